"""The prediction service, end to end: a real uvicorn server in a subprocess, called over HTTP.

Two tiny models are built in tmp dirs (a fastText model on a 3-class toy file and a 1-layer mini
BERT classifier), each is served on a free loopback port, and every answer is checked against the
same model called offline through zhbench.predict.
"""
from __future__ import annotations

import dataclasses
import json
import random
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from served import Server, free_port, port_open, serve_cmd, serve_env
from zhbench.predict import ModelLoadError, load_predictor
from zhbench.predictors import TextClassifier
from zhbench.text import segment

pytestmark = pytest.mark.timeout(300)  # generous: the shared CPU can be 5x oversubscribed

LABELS = ["体育", "财经", "科技"]
WORDS = [
    ["球队", "比赛", "冠军", "进球", "联赛", "教练"],
    ["股市", "银行", "利率", "基金", "投资", "上涨"],
    ["手机", "芯片", "网络", "软件", "发布", "AI"],
]
TITLES = ["中国队夺得联赛冠军", "央行下调利率 股市上涨", "新款手机芯片发布", "iPhone15 发布会",
          "教练谈比赛", "基金投资指南", "网络软件更新", "冠军 银行 芯片"]


def _title(rng: random.Random, label: int) -> str:
    return "".join(rng.choice(WORDS[label]) for _ in range(3))


def _write_labels(root: Path) -> Path:
    path = root / "labels.txt"
    path.write_text("\n".join(LABELS) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def fasttext_dir(tmp_path_factory) -> Path:
    from zhbench.models import fasttext_model

    root = tmp_path_factory.mktemp("ft")
    rng = random.Random(0)
    train_file = root / "train.ft.txt"
    with open(train_file, "w", encoding="utf-8") as f:
        for i in range(90):
            f.write(f"__label__{i % 3} {' '.join(segment(_title(rng, i % 3), 'char'))}\n")
    args = fasttext_model.FastTextArgs(epoch=10, lr=0.5, dim=10, bucket=1000)  # bucket*dim floats: keep it tiny
    model = fasttext_model.train(train_file, args, seed=1)
    out = root / "fasttext_toy"
    out.mkdir()
    sha = model.save(out / fasttext_model.MODEL_FILE)
    (out / "model.json").write_text(json.dumps({
        "model": "fasttext_toy", "type": "fasttext", "granularity": "char", "seed": 1,
        "args": dataclasses.asdict(args), "sha256": {fasttext_model.MODEL_FILE: sha}}), encoding="utf-8")
    _write_labels(root)
    (root / "fasttext_toy.json").write_text(json.dumps({  # a metrics JSON as evaluate_baseline writes it
        "model": "fasttext_toy", "dev": {"accuracy": 0.9, "macro": {"f1": 0.89}},
        "test": {"accuracy": 0.8, "macro": {"f1": 0.79}}}), encoding="utf-8")
    return out


def _wordlevel(lines: list[str]):
    """The project's WordLevel tokenizer over these token lines (zhbench.text.vocab), or, if that
    module is not there, the same structure built here: specials first, whitespace split, [CLS] $A [SEP]."""
    from collections import Counter

    counts = Counter(tok for line in lines for tok in line.split())
    try:
        from zhbench.text.vocab import build_wordlevel
    except ImportError:
        from tokenizers import Tokenizer
        from tokenizers.models import WordLevel
        from tokenizers.pre_tokenizers import WhitespaceSplit
        from tokenizers.processors import TemplateProcessing

        specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        vocab = {t: i for i, t in enumerate(specials + sorted(counts))}
        tok = Tokenizer(WordLevel(vocab, unk_token="[UNK]"))
        tok.pre_tokenizer = WhitespaceSplit()
        tok.post_processor = TemplateProcessing(single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
        return tok
    return build_wordlevel(counts)


@pytest.fixture(scope="module")
def backbone_dir(tmp_path_factory) -> Path:
    import torch

    from zhbench.models.backbones import SequenceClassifier, build_backbone, save_classifier

    root = tmp_path_factory.mktemp("bb")
    rng = random.Random(0)
    lines = [" ".join(segment(_title(rng, i % 3), "char")) for i in range(60)]
    tokenizer = _wordlevel(lines)
    torch.manual_seed(0)
    backbone = build_backbone("bert", "mini", vocab_size=tokenizer.get_vocab_size(), max_positions=16,
                              overrides={"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2})
    model = SequenceClassifier(backbone, "bert", len(LABELS))
    out = root / "char" / "bert"
    save_classifier(model, out, extra={"labels": LABELS, "granularity": "char", "max_len": 16, "backbone": "bert"})
    tokenizer.save(str(out / "tokenizer.json"))
    return out


@pytest.fixture(scope="module")
def ft_server(fasttext_dir):
    root = fasttext_dir.parent
    server = Server("--model-dir", str(fasttext_dir), "--labels", str(root / "labels.txt"),
                    "--metrics", str(root / "fasttext_toy.json"), "--max-texts", "8", "--max-chars", "40")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def bb_server(backbone_dir):
    # resolved by name, as `zhbench serve --model char/bert` would from the project root
    server = Server("--model", "char/bert", "--models-root", str(backbone_dir.parents[2]),
                    "--task", backbone_dir.parents[1].name)
    yield server
    server.stop()


def _offline(model_dir: Path, labels: Path | None = None) -> TextClassifier:
    from zhbench.data.thucnews import read_labels

    predictor, _ = load_predictor(model_dir, read_labels(labels) if labels else None)
    return TextClassifier(predictor)


def _check_against_offline(server: Server, clf: TextClassifier, k: int):
    r = server.client.post("/predict", json={"texts": TITLES, "top_k": k})
    assert r.status_code == 200, r.text
    body = r.json()
    offline = clf.predict(TITLES, k=k)
    probs = clf.predict_proba(TITLES)
    assert len(body["predictions"]) == len(TITLES)
    for served, want, row in zip(body["predictions"], offline, probs):
        assert served["label_id"] == want.label_id
        assert served["label"] == LABELS[want.label_id]
        assert served["probability"] == pytest.approx(want.probability, abs=1e-6)
        assert [t["label_id"] for t in served["top_k"]] == [t[0] for t in want.top_k]
        assert len(served["top_k"]) == k
        assert [t["probability"] for t in served["top_k"]] == pytest.approx(sorted(row, reverse=True)[:k], abs=1e-6)
    assert abs(probs.sum(axis=1) - 1).max() < 1e-4


# --------------------------------------------------------------------------------------------------
# Success paths


def test_fasttext_predictions_equal_offline(ft_server, fasttext_dir):
    clf = _offline(fasttext_dir, fasttext_dir.parent / "labels.txt")
    _check_against_offline(ft_server, clf, k=2)
    # the toy model has learnt its three topics
    assert [p.label_id for p in clf.predict(["球队比赛冠军", "银行利率基金", "手机芯片软件"])] == [0, 1, 2]


def test_backbone_predictions_equal_offline(bb_server, backbone_dir):
    _check_against_offline(bb_server, _offline(backbone_dir), k=3)


def test_backbone_batch_does_not_change_a_texts_answer(bb_server):
    alone = bb_server.client.post("/predict", json={"texts": [TITLES[0]]}).json()["predictions"][0]
    batched = bb_server.client.post("/predict", json={"texts": TITLES}).json()["predictions"][0]
    assert alone["label_id"] == batched["label_id"]
    assert alone["probability"] == pytest.approx(batched["probability"], abs=1e-6)


def test_odd_but_valid_texts(ft_server, bb_server, fasttext_dir):
    # a tab is text (fastText only ever sees space-joined tokens); other control characters are a 422
    texts = ["a\tb", "😀", "  前后有空格  ", "冠" * 40, "\u2028分隔"]
    clf = _offline(fasttext_dir, fasttext_dir.parent / "labels.txt")
    for server in (ft_server, bb_server):
        r = server.client.post("/predict", json={"texts": texts})
        assert r.status_code == 200, r.text
    served = ft_server.client.post("/predict", json={"texts": texts}).json()["predictions"]
    assert [p["label_id"] for p in served] == [p.label_id for p in clf.predict(texts)]


def test_top_k_default_query_and_body(ft_server):
    c = ft_server.client
    assert len(c.post("/predict", json={"texts": ["冠军"]}).json()["predictions"][0]["top_k"]) == 3
    assert len(c.post("/predict?top_k=1", json={"texts": ["冠军"]}).json()["predictions"][0]["top_k"]) == 1
    assert len(c.post("/predict?top_k=1", json={"texts": ["冠军"], "top_k": 2}).json()["predictions"][0]["top_k"]) == 2


def test_health(ft_server, bb_server):
    h = ft_server.client.get("/health").json()
    assert h["status"] == "ok" and h["model"] == "fasttext_toy" and h["kind"] == "fasttext"
    assert h["granularity"] == "char" and h["num_labels"] == 3
    assert h["version"] and h["git_commit"]
    assert h["metrics"]["test"] == {"accuracy": 0.8, "macro_f1": 0.79}
    assert h["limits"] == {"max_texts": 8, "max_chars": 40, "default_top_k": 3}
    b = bb_server.client.get("/health").json()
    assert b["kind"] == "backbone" and b["model"] == "char/bert" and b["metrics"] is None


def test_labels(ft_server, bb_server):
    want = {"labels": [{"label_id": i, "label": name} for i, name in enumerate(LABELS)]}
    assert ft_server.client.get("/labels").json() == want
    assert bb_server.client.get("/labels").json() == want


def test_openapi(ft_server):
    spec = ft_server.client.get("/openapi.json").json()
    assert {"/predict", "/health", "/labels"} <= set(spec["paths"])
    request = spec["components"]["schemas"]["PredictRequest"]["properties"]["texts"]
    assert request["maxItems"] == 8 and request["items"]["maxLength"] == 40


# --------------------------------------------------------------------------------------------------
# Bad input: always 4xx with a message, never 500

JSON = {"content-type": "application/json"}
BAD = [
    ("empty list", dict(json={"texts": []}), 422, "texts"),
    ("no texts field", dict(json={"top_k": 2}), 422, "texts: Field required"),
    ("misspelt field", dict(json={"text": ["冠军"]}), 422, "text: Extra inputs are not permitted"),
    ("texts not a list", dict(json={"texts": "冠军"}), 422, "texts"),
    ("body not an object", dict(json=["冠军"]), 422, "body"),
    ("number item", dict(json={"texts": ["冠军", 3]}), 422, "texts[1]: Input should be a valid string"),
    ("null item", dict(json={"texts": [None]}), 422, "texts[0]"),
    ("nested list item", dict(json={"texts": [["冠军"]]}), 422, "texts[0]"),
    ("empty string", dict(json={"texts": ["冠军", ""]}), 422, "texts[1]: String should have at least 1 character"),
    ("blank string", dict(json={"texts": ["  \t\n"]}), 422, "hold only white space"),
    ("NUL in a text", dict(json={"texts": ["冠军", "女排\u0000夺冠"]}), 422, "texts[1] holds a control character U+0000"),
    ("newline in a text", dict(json={"texts": ["冠军\n比赛"]}), 422, "texts[0] holds a control character U+000A"),
    ("over-long text", dict(json={"texts": ["冠" * 41]}), 422, "texts[0]: String should have at most 40 characters"),
    ("too many texts", dict(json={"texts": ["冠军"] * 9}), 422, "texts: List should have at most 8 items"),
    ("top_k zero", dict(json={"texts": ["冠军"], "top_k": 0}), 422, "top_k"),
    ("top_k above labels", dict(json={"texts": ["冠军"], "top_k": 4}), 422, "top_k"),
    ("top_k string", dict(json={"texts": ["冠军"], "top_k": "2"}), 422, "top_k"),
    ("query top_k bad", dict(json={"texts": ["冠军"]}, params={"top_k": "x"}), 422, "query top_k"),
    ("invalid JSON", dict(content=b'{"texts": ["a",', headers=JSON), 400, "invalid JSON"),
    ("not UTF-8", dict(content=b'{"texts": ["\xff"]}', headers=JSON), 400, "error parsing the body"),
    ("empty body", dict(content=b"", headers=JSON), 422, "Field required"),
    ("text/plain", dict(content=b'{"texts": ["a"]}', headers={"content-type": "text/plain"}), 415, "application/json"),
    ("form", dict(data={"texts": "a"}), 415, "application/json"),
    ("no content type", dict(content=b'{"texts": ["a"]}'), 415, "found none"),
    ("huge body", dict(content=b'{"texts": ["' + b"a" * 200_000 + b'"]}', headers=JSON), 413, "limit"),
]


@pytest.mark.parametrize("case,kwargs,status,message", BAD, ids=[b[0] for b in BAD])
def test_bad_input_is_4xx_with_message(ft_server, case, kwargs, status, message):
    r = ft_server.client.post("/predict", **kwargs)
    assert r.status_code == status, r.text
    assert message in r.json()["detail"]


def test_wrong_method_and_path(ft_server):
    assert ft_server.client.get("/predict").status_code == 405
    assert ft_server.client.get("/nope").status_code == 404


def test_bad_input_on_backbone_server(bb_server):
    r = bb_server.client.post("/predict", json={"texts": ["冠军", 1]})
    assert r.status_code == 422 and "texts[1]" in r.json()["detail"]
    # a text of only unknown tokens is fine: [CLS] [UNK] [SEP], as in training
    assert bb_server.client.post("/predict", json={"texts": ["𠀀𠀁"]}).status_code == 200


# --------------------------------------------------------------------------------------------------
# Startup failures: clear message, non-zero exit, port never opened


def _start_fails(*args: str) -> str:
    port = free_port()
    proc = subprocess.Popen(serve_cmd(port, *args), env=serve_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    opened = False
    while proc.poll() is None:
        opened = opened or port_open(port)
        time.sleep(0.05)
    out, err = proc.communicate()
    assert proc.returncode == 2, (proc.returncode, err)
    assert not opened, "the port opened before the model failed to load"
    assert "Uvicorn running" not in err
    return err


def test_missing_model_dir(tmp_path):
    err = _start_fails("--model-dir", str(tmp_path / "nope"))
    assert "model dir not found" in err


def test_unknown_model_name(tmp_path, fasttext_dir):
    err = _start_fails("--model", "bert", "--models-root", str(tmp_path))
    assert "no dir" in err and "run the pipeline first" in err


def test_corrupt_fasttext_file(tmp_path, fasttext_dir):
    broken = tmp_path / "fasttext_toy"
    shutil.copytree(fasttext_dir, broken)
    data = (broken / "model.bin").read_bytes()
    (broken / "model.bin").write_bytes(data[: len(data) // 2])
    err = _start_fails("--model-dir", str(broken), "--labels", str(fasttext_dir.parent / "labels.txt"))
    assert "sha256" in err and "model.bin" in err


BROKEN_BACKBONE = [
    ("model.safetensors", b"\x00garbage" * 10, r"model\.safetensors: expected a safetensors file"),
    ("model.safetensors", None, r"model\.safetensors: expected a safetensors file"),  # None: cut in half
    ("head.safetensors", None, r"head\.safetensors: expected a safetensors file"),
    ("zhbench.json", b"{not json", r"zhbench\.json: expected a JSON object"),
    ("tokenizer.json", b"", r"tokenizer\.json: cannot read the tokenizer"),
]


@pytest.mark.parametrize("name,content,message", BROKEN_BACKBONE, ids=["model-garbage", "model-cut", "head-cut", "meta", "tokenizer"])
def test_corrupt_backbone_file(tmp_path, backbone_dir, name, content, message):
    # In-process: a second torch/transformers import in a subprocess costs ~10 s of CPU; the
    # subprocess path (exit 2, port never opened) is the same code and is covered by the fastText cases.
    broken = tmp_path / "bert"
    shutil.copytree(backbone_dir, broken)
    data = (broken / name).read_bytes()
    (broken / name).write_bytes(data[: len(data) // 2] if content is None else content)
    with pytest.raises(ModelLoadError, match=message):
        load_predictor(broken)


def test_backbone_tokenizer_must_fit_the_model(tmp_path, backbone_dir):
    broken = tmp_path / "bert"
    shutil.copytree(backbone_dir, broken)
    _wordlevel([" ".join(f"t{i}" for i in range(500))]).save(str(broken / "tokenizer.json"))
    with pytest.raises(ModelLoadError, match="not the one this model was trained with"):
        load_predictor(broken)


def test_every_kind_has_a_loader():
    from zhbench.predict import LAZY_LOADERS, loader_for

    for kind in ("fasttext", "backbone", *LAZY_LOADERS):
        assert callable(loader_for(kind)), kind


def test_unknown_kind_refused(tmp_path):
    (tmp_path / "zhbench.json").write_text(json.dumps({"kind": "crystal_ball"}))
    with pytest.raises(ModelLoadError, match="unknown model kind 'crystal_ball'"):
        load_predictor(tmp_path)


def test_pickled_model_refused(tmp_path):
    (tmp_path / "model.json").write_text(json.dumps({"model": "random_forest", "type": "random_forest"}))
    with pytest.raises(ModelLoadError, match="pickle"):
        load_predictor(tmp_path)


def test_fasttext_without_checksum_refused(tmp_path, fasttext_dir):
    shutil.copytree(fasttext_dir, tmp_path / "ft")
    meta = json.loads((tmp_path / "ft" / "model.json").read_text())
    meta.pop("sha256")
    (tmp_path / "ft" / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelLoadError, match="no sha256"):
        load_predictor(tmp_path / "ft", LABELS)


def test_model_names_resolve_to_their_dirs_or_say_what_is_trained(tmp_path):
    from zhbench.serve import resolve_model_dir

    for d in ("t/fasttext_char", "t/backbones/char/bert", "ner/cluener"):
        (tmp_path / d).mkdir(parents=True)
    assert resolve_model_dir("fasttext_char", tmp_path, "t") == tmp_path / "t/fasttext_char"
    assert resolve_model_dir("char/bert", tmp_path, "t") == tmp_path / "t/backbones/char/bert"
    assert resolve_model_dir("ner/cluener", tmp_path, "t") == tmp_path / "ner/cluener"  # whatever the task
    with pytest.raises(ModelLoadError, match="did you mean backbones/char/bert"):
        resolve_model_dir("bert", tmp_path, "t")
    with pytest.raises(ModelLoadError, match=r"Trained NER models: \['ner/cluener'\]"):
        resolve_model_dir("ner/msra", tmp_path, "t")

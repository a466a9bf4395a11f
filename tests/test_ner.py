"""NER: readers that name file:line, BIO <-> spans, the BERT+CRF tagger, seqeval metrics, stage scripts."""
from __future__ import annotations

import importlib.util
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from served import Server
from zhbench.data.ner import (OUTSIDE, Span, bio_to_spans, check_bio, read_cluener, read_pd1998, spans_to_bio,
                              spans_to_cluener, tag_set)
from zhbench.io import BadInputError
from zhbench.ner import (NerConfig, VocabCharEncoder, build_char_vocab, build_tagger, make_windows, ner_metrics, predict,
                         train_tagger)
from zhbench.data.ner import Sentence

SCRIPTS = Path(__file__).resolve().parents[1] / "workflow" / "scripts"
# A 1-layer, 32-wide BERT: enough to learn toy patterns in a few dozen CPU steps.
TINY = {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2}


def write_lines(path: Path, records) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n"
                            for r in records), encoding="utf-8")
    return path


GOOD = {"text": "叶老桂在浙商银行", "label": {"name": {"叶老桂": [[0, 2]]}, "company": {"浙商银行": [[4, 7]]}}}


# --- CLUENER reader ---------------------------------------------------------------------------------

def test_cluener_reads_spans_as_bio(tmp_path):
    (s,) = read_cluener(write_lines(tmp_path / "a.json", [GOOD]))
    assert s.tags == ["B-name", "I-name", "I-name", "O", "B-company", "I-company", "I-company", "I-company"]
    assert s.spans == [Span("name", 0, 2), Span("company", 4, 7)]


@pytest.mark.parametrize("label, expected", [
    ({"name": {"叶老桂": [[6, 8]]}}, "outside the text"),
    ({"name": {"叶老桂": [[1, 3]]}}, "expected text[1:4] == '叶老桂', found '老桂在'"),
    ({"person": {"叶老桂": [[0, 2]]}}, "unknown entity type 'person'"),
    ({"name": {"叶老桂": [[0, 2]]}, "company": {"桂在": [[2, 3]]}}, "crossing spans"),
    ({"name": {"叶老桂": [[0, 2]]}, "company": {"老": [[1, 1]]}}, "nested spans"),
    ({"name": {"叶老桂": [[0]]}}, "expected a span [start, end]"),
])
def test_cluener_bad_span_names_file_and_line(tmp_path, label, expected):
    path = write_lines(tmp_path / "bad.json", [GOOD, {"text": "叶老桂在浙商银行", "label": label}])
    with pytest.raises(BadInputError) as e:
        read_cluener(path)
    assert str(e.value).startswith(f"{path}:2: ")
    assert expected in str(e.value)


def test_cluener_nested_span_policy(tmp_path):
    rec = {"text": "《招商银行报告》", "label": {"book": {"《招商银行报告》": [[0, 7]]}, "company": {"招商银行": [[1, 4]]}}}
    path = write_lines(tmp_path / "nested.json", [rec])
    dropped: list = []
    (s,) = read_cluener(path, on_nested="keep_outer", dropped=dropped)
    assert s.spans == [Span("book", 0, 7)] and dropped == [Span("company", 1, 4)]


def test_cluener_bad_json_and_empty_text(tmp_path):
    with pytest.raises(BadInputError, match=r"bad\.json:2: expected a JSON object, found invalid JSON"):
        read_cluener(write_lines(tmp_path / "bad.json", [GOOD, '{"text": "x"']))
    with pytest.raises(BadInputError, match=r"e\.json:1: expected a non-empty string"):
        read_cluener(write_lines(tmp_path / "e.json", [{"text": "", "label": {}}]))


# --- People's Daily reader --------------------------------------------------------------------------

PD_OK = ["中 B-ORG", "共 I-ORG", "在 O", "", "", "北 B-LOC", "京 I-LOC", ""]


def test_pd1998_reads_sentences(tmp_path):
    sents = read_pd1998(write_lines(tmp_path / "ok.txt", PD_OK))
    assert [s.text for s in sents] == ["中共在", "北京"]
    assert sents[1].tags == ["B-LOC", "I-LOC"] and sents[1].line == 6
    assert sents[0].spans == [Span("ORG", 0, 1)]


@pytest.mark.parametrize("bad, expected", [
    ("京 I-LOC X", "expected 'char<SPACE>tag'"),
    ("京", "expected 'char<SPACE>tag'"),
    ("京 B-GPE", "unknown tag 'B-GPE'"),
    ("京 I-PER", "I-PER must continue a B-PER/I-PER entity, found it after B-LOC"),
])
def test_pd1998_bad_line_names_file_and_line(tmp_path, bad, expected):
    path = write_lines(tmp_path / "bad.txt", PD_OK[:5] + ["北 B-LOC", bad, ""])
    with pytest.raises(BadInputError) as e:
        read_pd1998(path)
    assert str(e.value).startswith(f"{path}:7: ") and expected in str(e.value)


def test_pd1998_i_at_sentence_start_is_an_error(tmp_path):
    with pytest.raises(BadInputError, match=r"x\.txt:2: I-LOC must continue .* after the sentence start"):
        read_pd1998(write_lines(tmp_path / "x.txt", ["", "北 I-LOC", ""]))


# --- BIO <-> spans ----------------------------------------------------------------------------------

def test_bio_span_roundtrip_random():
    rng = random.Random(0)
    for _ in range(200):
        n = rng.randint(1, 30)
        spans, pos = [], 0
        while pos < n:
            pos += rng.randint(0, 3)
            length = rng.randint(1, 4)
            if pos + length <= n:
                spans.append(Span(rng.choice(["LOC", "PER"]), pos, pos + length - 1))
            pos += length
        tags = spans_to_bio(n, spans)
        assert bio_to_spans(tags) == spans and check_bio(tags) is None


def test_bio_lenient_decoding_and_cluener_format():
    tags = ["I-PER", "I-PER", "O", "B-LOC", "I-PER", "B-LOC", "I-LOC"]
    assert check_bio(tags) == 0
    spans = bio_to_spans(tags)
    assert spans == [Span("PER", 0, 1), Span("LOC", 3, 3), Span("PER", 4, 4), Span("LOC", 5, 6)]
    assert spans_to_cluener(list("张三在京李沪宁"), spans) == {"PER": {"张三": [[0, 1]], "李": [[4, 4]]},
                                                         "LOC": {"京": [[3, 3]], "沪宁": [[5, 6]]}}
    with pytest.raises(ValueError, match="overlaps"):
        spans_to_bio(5, [Span("LOC", 0, 2), Span("PER", 2, 3)])


# --- metrics ----------------------------------------------------------------------------------------

def test_seqeval_metrics_hand_checked():
    # gold: PER(0-1) LOC(3) | LOC(0-1); predicted: PER(0-1) exact, LOC(3) missed, LOC(0) wrong boundary, PER(3) spurious
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-LOC", "I-LOC", "O", "O"]]
    pred = [["B-PER", "I-PER", "O", "O"], ["B-LOC", "O", "O", "B-PER"]]
    m = ner_metrics(gold, pred, ("LOC", "ORG", "PER"), {"LOC": "LOC", "ORG": "ORG", "PER": "PER"})
    assert m["precision"] == pytest.approx(1 / 3) and m["recall"] == pytest.approx(1 / 3)
    assert m["f1"] == pytest.approx(1 / 3) and m["support"] == 3
    assert m["per_entity"]["PER"] == {"type": "PER", "precision": 0.5, "recall": 1.0, "f1": pytest.approx(2 / 3),
                                      "support": 1}
    assert m["per_entity"]["LOC"]["f1"] == 0.0 and m["per_entity"]["LOC"]["support"] == 2
    assert m["per_entity"]["ORG"] == {"type": "ORG", "precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert m["overall_macro_f1"] == pytest.approx((2 / 3) / 3)


# --- the tagger -------------------------------------------------------------------------------------

def digit_corpus(n: int, seed: int) -> list[Sentence]:
    """Letters with runs of digits; the digit runs are NUM entities."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        chars, tags = [], []
        while len(chars) < rng.randint(6, 14):
            if rng.random() < 0.3 and (not tags or tags[-1] == OUTSIDE):  # runs never touch: a letter between
                run = [rng.choice("0123456789") for _ in range(rng.randint(1, 3))]
                chars += run
                tags += ["B-NUM"] + ["I-NUM"] * (len(run) - 1)
            else:
                chars.append(rng.choice("abcdefgh"))
                tags.append(OUTSIDE)
        out.append(Sentence(chars, tags))
    return out


def train_toy(steps: int, seed: int = 7, **kw):
    train, test = digit_corpus(160, 1), digit_corpus(40, 2)
    cfg = NerConfig(overrides=TINY, max_len=10, batch_size=16, epochs=100, max_steps=steps, lr=3e-3, head_lr=3e-2,
                    warmup_ratio=0.0, seed=seed, **kw)
    encoder = VocabCharEncoder(build_char_vocab(train))
    tags = tag_set(("NUM",))
    model = build_tagger(cfg, encoder, len(tags))
    windows = make_windows(train, {t: i for i, t in enumerate(tags)}, encoder.width(cfg.max_len))
    result = train_tagger(model, windows, encoder, cfg, progress=False)
    predicted, loss, _ = predict(model, test, encoder, tags, cfg.max_len, batch_size=16)
    metrics = ner_metrics([s.tags for s in test], predicted, ("NUM",), {"NUM": "Number"})
    return result, metrics, loss, predicted, test


def test_crf_tagger_learns_digits_and_windows_rejoin():
    # max_len 10 -> windows of 8 characters: most sentences are cut and must be joined back
    result, metrics, loss, predicted, test = train_toy(60)
    assert [len(p) for p in predicted] == [len(s.chars) for s in test]
    assert result.epochs[0]["train_loss"] > result.train_loss
    assert metrics["f1"] > 0.9, metrics


def test_tiny_training_is_deterministic():
    a = train_toy(8, seed=3)
    b = train_toy(8, seed=3)
    assert a[0].epochs == b[0].epochs and a[1] == b[1] and a[2] == b[2]


def test_crf_mask_must_start_on():
    cfg = NerConfig(overrides=TINY, max_len=8)
    model = build_tagger(cfg, VocabCharEncoder(build_char_vocab([Sentence(list("abc"), ["O"] * 3)])), 3)
    ids = torch.tensor([[2, 3, 0, 0]])
    with pytest.raises(ValueError, match="at least one character"):
        model(ids, torch.tensor([[1, 1, 0, 0]]), torch.zeros(1, 4, dtype=torch.long), torch.zeros(1, 4, dtype=torch.long))


# --- stage scripts ----------------------------------------------------------------------------------

def load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_ner_stages_end_to_end(tmp_path):
    texts = ["张三在北京工作", "李四去上海", "王五和赵六在深圳", "北京欢迎你"]
    labels = [{"name": {"张三": [[0, 1]]}, "address": {"北京": [[3, 4]]}}, {"name": {"李四": [[0, 1]]}},
              {"name": {"王五": [[0, 1]], "赵六": [[3, 4]]}}, {"address": {"北京": [[0, 1]]}}]
    data = write_lines(tmp_path / "train.json", [{"text": t, "label": l} for t, l in zip(texts, labels)])
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"seed": 1, "ner": {
        "variants": ["cluener"], "on_nested_span": "keep_outer", "overrides": TINY, "max_len": 8,
        "batch_size": 2, "epochs": 1, "max_steps": 2, "max_eval_sentences": 3}}), encoding="utf-8")
    model, metrics = tmp_path / "models/ner/cluener", tmp_path / "metrics/ner/cluener.json"
    timing, preds = tmp_path / "metrics/ner/cluener_timing.json", tmp_path / "reports/ner/cluener.dev.jsonl"
    assert load_script("train_ner").main(["--params", str(params), "--variant", "cluener", "--train", str(data),
                                          "--out", str(model), "--timing", str(tmp_path / "train_timing.json"),
                                          "--no-progress"]) == 0
    evaluate = load_script("evaluate_ner").main
    argv = ["--params", str(params), "--variant", "cluener", "--model", str(model), "--eval", str(data),
            "--metrics", str(metrics), "--train-timing", str(tmp_path / "train_timing.json"), "--timing", str(timing), "--predictions", str(preds), "--no-progress"]
    assert evaluate(argv) == 0
    first = metrics.read_bytes()
    m = json.loads(first)
    assert {"precision", "recall", "f1", "loss", "overall_macro_f1", "per_entity"} <= set(m)
    assert m["eval_split"] == "dev" and m["train_split"] == "train" and m["model"] == "bert-mini+CRF"
    assert set(m["per_entity"]) == {"Person Name", "Organization", "Position", "Company", "Address", "Game",
                                    "Government", "Scene", "Book", "Movie"}
    assert not {"train_step_time", "device"} & set(m)
    t = json.loads(timing.read_text())
    assert {"train_step_time", "train_epoch_time", "valid_step_time", "valid_epoch_time", "device"} <= set(t)
    rows = [json.loads(line) for line in preds.read_text(encoding="utf-8").splitlines()]
    assert m["eval_sentences"] == 3 and m["eval_sentences_available"] == 4
    assert [r["text"] for r in rows] == texts[:3] and all(isinstance(r["label"], dict) for r in rows)
    assert evaluate(argv) == 0 and metrics.read_bytes() == first  # quality metrics are byte-stable

    # `zhbench predict --model ner/<variant>` answers with the entities the evaluation wrote
    proc = subprocess.run([sys.executable, "-m", "zhbench.cli", "predict", "--model", "ner/cluener", "--models-root",
                           str(tmp_path / "models"), *texts[:3]], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    answers = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [a["text"] for a in answers] == texts[:3]
    for answer, row in zip(answers, rows):
        label: dict = {}
        for e in answer["entities"]:
            assert answer["text"][e["start"]:e["end"] + 1] == e["text"]
            label.setdefault(e["type"], {}).setdefault(e["text"], []).append([e["start"], e["end"]])
        assert label == row["label"]

    # `zhbench serve --model ner/<variant>` answers POST /entities with the same entities
    server = Server("--model", "ner/cluener", "--models-root", "models", cwd=tmp_path)
    try:
        health = server.client.get("/health").json()
        assert (health["kind"], health["model"]) == ("ner", "ner/cluener")
        assert health["metrics"]["dev"]["f1"] == m["f1"]  # metrics/ner/cluener.json of this model
        types = [entry["label"] for entry in server.client.get("/labels").json()["labels"]]
        r = server.client.post("/entities", json={"texts": texts[:3]})
        assert r.status_code == 200, r.text
        assert r.json() == {"model": "ner/cluener", "results": answers}
        assert {e["type"] for a in answers for e in a["entities"]} <= set(types)
        bad = server.client.post("/entities", json={"texts": ["北京\x00"]})
        assert bad.status_code == 422 and "texts[0]" in bad.json()["detail"]
        assert server.client.post("/predict", json={"texts": texts[:1]}).status_code == 404  # a tagger, not a classifier
    finally:
        server.stop()
    # a model trained on one variant is not scored as another
    assert evaluate(argv[:3] + ["pd1998-devtest"] + argv[4:]) == 1

"""Compression: int8 quantization (torch, ONNX Runtime), distill TSV, TextCNN student, FastBERT.

One tiny BERT teacher (3 layers, 32 wide) trained for a few seconds on toy titles whose label is
given by their tokens, shared by every test; torch runs on one thread.
"""
from __future__ import annotations

import importlib.util
import random
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml

ROOT = Path(__file__).resolve().parents[1]
LABELS = ["finance", "sports", "game"]
# Each class has its own characters; titles mix in shared noise characters.
CLASS_CHARS = ["股基金银", "球赛冠军", "游戏玩家"]
NOISE = "的了在是有和大中上新"
MAX_LEN = 16


def _title(rng: random.Random, label: int) -> str:
    chars = [rng.choice(CLASS_CHARS[label]) for _ in range(rng.randint(2, 4))]
    chars += [rng.choice(NOISE) for _ in range(rng.randint(1, 6))]
    rng.shuffle(chars)
    return " ".join(chars)


def _write_data(root: Path, sizes=(240, 60, 60)) -> Path:
    """A processed dataset as preprocessing writes it: char/ tokens and text/ titles."""
    rng = random.Random(0)
    for sub in ("char", "text"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    (root / "labels.txt").write_text("\n".join(LABELS) + "\n", encoding="utf-8")
    for split, n in zip(("train", "dev", "test"), sizes):
        rows = [(_title(rng, i % 3), i % 3) for i in range(n)]
        (root / "char" / f"{split}.tsv").write_text("".join(f"{t}\t{y}\n" for t, y in rows), encoding="utf-8")
        (root / "text" / f"{split}.tsv").write_text("".join(f"{t.replace(' ', '')}\t{y}\n" for t, y in rows),
                                                   encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    """(data dir, teacher dir): a mini BERT trained a few steps and saved with save_classifier."""
    import shutil

    from zhbench.features import encode_split
    from zhbench.models.backbones import SequenceClassifier, build_backbone, save_classifier
    from zhbench.text.vocab import build_vocab, save_tokenizer

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("compress")
    data = _write_data(root / "data")
    tok, _ = build_vocab(data / "char" / "train.tsv", "char")
    save_tokenizer(tok, root / "tokenizer.json")
    torch.manual_seed(0)
    backbone = build_backbone("bert", "mini", tok.get_vocab_size(), 32,
                              overrides=dict(hidden_size=32, num_hidden_layers=3, num_attention_heads=2,
                                             intermediate_size=64))
    model = SequenceClassifier(backbone, "bert", len(LABELS), 0.0)
    feats = encode_split(root / "tokenizer.json", data / "char" / "train.tsv", MAX_LEN, len(LABELS))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(8):
        for idx in torch.randperm(len(feats), generator=g).split(32):
            loss = F.cross_entropy(model(feats.input_ids[idx], feats.attention_mask[idx]).logits, feats.labels[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    out = root / "teacher"
    save_classifier(model, out, {"labels": LABELS, "granularity": "char", "max_len": MAX_LEN, "backbone": "bert"})
    shutil.copyfile(root / "tokenizer.json", out / "tokenizer.json")
    return data, out


def _test_features(data, teacher_dir):
    from zhbench.features import encode_split

    return encode_split(teacher_dir / "tokenizer.json", data / "char" / "test.tsv", MAX_LEN, len(LABELS))


def test_teacher_learned(teacher):
    from zhbench.models.backbones import load_classifier

    data, tdir = teacher
    model, _ = load_classifier(tdir)
    test = _test_features(data, tdir)
    acc = (model(test.input_ids, test.attention_mask).logits.argmax(1) == test.labels).float().mean()
    assert acc > 0.8


# --- quantization ------------------------------------------------------------------------------------

def test_torch_int8_reload_identical(teacher, tmp_path):
    from zhbench import quantize as Q
    from zhbench.models.backbones import load_classifier
    from zhbench.predict import load_predictor

    data, tdir = teacher
    model, _ = load_classifier(tdir)
    q = Q.quantize_torch(model)
    assert any(type(m).__module__.startswith("torch.ao.nn.quantized.dynamic") for m in q.modules())
    Q.save_torch_int8(q, tdir, tmp_path / "int8")
    q2, extra = Q.load_torch_int8(tmp_path / "int8")
    test = _test_features(data, tdir)
    before = q(test.input_ids, test.attention_mask).logits
    after = q2(test.input_ids, test.attention_mask).logits
    assert torch.equal(before, after)
    assert extra["labels"] == LABELS
    assert Q.state_dict_bytes(q) < Q.state_dict_bytes(model)
    # the file is a plain tensor dict: weights_only loading is what makes it safe
    state = torch.load(tmp_path / "int8" / Q.INT8_FILE, weights_only=True)
    assert all(torch.is_tensor(v) or isinstance(v, (tuple, torch.dtype)) for v in state.values())
    # the Predictor loader serves it
    from zhbench.predict import LOADERS
    LOADERS.setdefault("backbone_int8", Q.load_int8_predictor)
    pred, info = load_predictor(tmp_path / "int8")
    probs = pred.predict_proba(["股 的 基", "球 赛 了"])
    assert probs.shape == (2, 3) and info.kind == "backbone_int8"
    # a title's answer does not depend on the titles sharing its request (per-batch activation scales)
    crowd = ["球 赛 了 " * 5, "股", "基 金 股 市 " * 3]
    assert np.array_equal(pred.predict_proba(["股 的 基"]), pred.predict_proba(["股 的 基", *crowd])[:1])


def test_ort_int8_agrees_with_fp32(teacher, tmp_path):
    from zhbench import quantize as Q
    from zhbench.models.backbones import load_classifier

    data, tdir = teacher
    model, _ = load_classifier(tdir)
    Q.save_onnx(model, tdir, tmp_path / "onnx", MAX_LEN)
    test = _test_features(data, tdir)
    fp32 = Q.predict_logits(model, test.input_ids, test.attention_mask)
    onnx_fp32 = Q.predict_logits(Q.OrtClassifier(tmp_path / "onnx" / Q.ONNX_FP32, 1), test.input_ids, test.attention_mask)
    int8 = Q.predict_logits(Q.OrtClassifier(tmp_path / "onnx" / Q.ONNX_INT8, 1), test.input_ids, test.attention_mask)
    assert torch.allclose(onnx_fp32, fp32, atol=1e-4)  # padded rows included: the mask survived export
    assert (int8.argmax(1) == fp32.argmax(1)).float().mean() >= 0.9
    assert (tmp_path / "onnx" / Q.ONNX_INT8).stat().st_size < (tmp_path / "onnx" / Q.ONNX_FP32).stat().st_size


# --- distill TSV -------------------------------------------------------------------------------------

def _distill(data, tdir, out):
    from zhbench.distill import write_distill_tsv

    splits = ("train", "dev", "test")
    return write_distill_tsv(tdir, data, splits, {s: out / f"{s}_distill.tsv" for s in splits}, LABELS, batch_size=50)


def test_distill_tsv_deterministic_with_columns(teacher, tmp_path):
    data, tdir = teacher
    _distill(data, tdir, tmp_path / "a")
    _distill(data, tdir, tmp_path / "b")
    for s in ("train", "dev", "test"):
        a = (tmp_path / "a" / f"{s}_distill.tsv").read_bytes()
        assert a == (tmp_path / "b" / f"{s}_distill.tsv").read_bytes()
        lines = a.decode().splitlines()
        src = (data / "char" / f"{s}.tsv").read_text(encoding="utf-8").splitlines()
        assert len(lines) == len(src)
        for line, orig in zip(lines, src):
            cols = line.split("\t")
            assert len(cols) == 2 + len(LABELS)
            assert "\t".join(cols[:2]) == orig
            assert all(len(c.split(".")[1]) == 6 for c in cols[2:])


def test_label_set_mismatch_and_missing_teacher(teacher, tmp_path):
    from zhbench.distill import TeacherError, load_teacher, read_distill_tsv

    data, tdir = teacher
    with pytest.raises(TeacherError, match="label set does not match"):
        load_teacher(tdir, LABELS + ["politics"])
    with pytest.raises(TeacherError, match="not found"):
        load_teacher(tmp_path / "no-teacher", LABELS)
    _distill(data, tdir, tmp_path)
    with pytest.raises(TeacherError, match="different label set"):
        read_distill_tsv(tmp_path / "dev_distill.tsv", 4)


# --- TextCNN student ---------------------------------------------------------------------------------

def test_textcnn_student_trains_and_reloads(teacher, tmp_path):
    from zhbench import distill as D
    from zhbench.models.textcnn import TextCNN, TextCNNConfig, load_textcnn, save_textcnn

    data, tdir = teacher
    _distill(data, tdir, tmp_path)
    splits = {s: D.read_distill_tsv(tmp_path / f"{s}_distill.tsv", len(LABELS)) for s in ("train", "dev", "test")}
    tok = tdir / "tokenizer.json"
    ids = {s: D.encode_texts(tok, d.texts, MAX_LEN) for s, d in splits.items()}
    vocab = max(int(i.max()) for i in ids.values()) + 1
    torch.manual_seed(0)
    student = TextCNN(TextCNNConfig(vocab, len(LABELS), embedding_dim=16, num_filters=8))
    cfg = D.StudentConfig(epochs=6, batch_size=32, lr=1e-2, max_len=MAX_LEN, eval_every=5, threads=1)
    res = D.train_student(student, ids["train"], splits["train"], ids["dev"], splits["dev"], cfg, progress=False)
    acc = (D.predict_student(student, ids["test"]).argmax(1) == splits["test"].labels).float().mean()
    assert res.steps > 0 and acc > 0.7
    save_textcnn(student, tmp_path / "student", {"labels": LABELS, "granularity": "char", "max_len": MAX_LEN}, tok)
    again, _ = load_textcnn(tmp_path / "student")
    assert torch.equal(D.predict_student(student, ids["test"]), D.predict_student(again, ids["test"]))
    # kd_loss: alpha 1 is plain CE; the soft part is zero when student == teacher
    logits = torch.randn(4, 3)
    gold = torch.tensor([0, 1, 2, 0])
    assert torch.allclose(D.kd_loss(logits, logits, gold, 1.0, 2.0), F.cross_entropy(logits, gold))
    assert torch.allclose(D.kd_loss(logits, logits, gold, 0.0, 2.0), torch.tensor(0.0), atol=1e-6)
    # a transfer row learns from the teacher alone: its gold label does not move the loss
    teacher_logits, flags = torch.randn(4, 3), torch.tensor([False, False, True, True])
    other_gold = torch.tensor([0, 1, 0, 1])
    mixed = D.kd_loss(logits, teacher_logits, gold, 0.5, 2.0, flags)
    assert torch.allclose(mixed, D.kd_loss(logits, teacher_logits, other_gold, 0.5, 2.0, flags))
    assert not torch.allclose(mixed, D.kd_loss(logits, teacher_logits, gold, 0.5, 2.0))


def test_transfer_set_is_seeded_noisy_copies_of_the_train_titles():
    from zhbench.transfer_set import MASK, TransferConfig, transfer_titles

    titles = ["中国女排夺得世界杯冠军", "央行宣布下调存款准备金率 0.5 个百分点", "新游戏上线"]
    cfg = TransferConfig(copies=3, mask_prob=0.3, span_prob=0.5, min_span=4)
    noisy, labels = transfer_titles(titles, [7, 0, 8], cfg, seed=1)
    assert (noisy, labels) == transfer_titles(titles, [7, 0, 8], cfg, seed=1)
    assert noisy != transfer_titles(titles, [7, 0, 8], cfg, seed=2)[0]
    assert len(noisy) == 9 and labels == [7, 0, 8] * 3
    for copy, source in zip(noisy, titles * 3):
        assert len(copy) >= min(len(source), cfg.min_span)
        kept = copy.replace(MASK, "")
        assert all(c in source for c in kept), (copy, source)  # only masking and cutting, nothing new
    assert any(MASK in c for c in noisy) and any(len(c) < len(s) for c, s in zip(noisy, titles * 3))
    assert transfer_titles(titles, [7, 0, 8], TransferConfig(), seed=1) == ([], [])
    for bad in ({"copies": -1}, {"mask_prob": 1.5}, {"min_span": 0}, {"copies": 2, "masks": 0.1}):
        with pytest.raises(ValueError, match="distill.transfer"):
            TransferConfig.from_dict(bad)


# --- FastBERT ----------------------------------------------------------------------------------------

def test_fastbert_early_exit(teacher, tmp_path):
    from zhbench.models.backbones import load_classifier
    from zhbench.models.fastbert import (FastBert, FastBertTrainConfig, FastBertUnsupportedError, evaluate_speed,
                                         load_fastbert, save_fastbert, self_distill)

    data, tdir = teacher
    model, extra = load_classifier(tdir)
    torch.manual_seed(0)
    fb = FastBert(model, student_hidden=16)
    test = _test_features(data, tdir)
    from zhbench.features import encode_split
    train = encode_split(tdir / "tokenizer.json", data / "char" / "train.tsv", MAX_LEN, len(LABELS))
    stage1 = self_distill(fb, train.input_ids, train.attention_mask,
                          FastBertTrainConfig(epochs=2, batch_size=32, lr=5e-3, threads=1), progress=False)
    assert stage1.epochs[-1]["train_loss"] < stage1.epochs[0]["train_loss"]
    full = model(test.input_ids, test.attention_mask).logits.argmax(1)
    r0 = evaluate_speed(fb, test.input_ids, test.attention_mask, test.labels, 0.0, batch_size=16)
    assert torch.equal(r0["predictions"], full) and r0["avg_exit_layer"] == fb.num_layers
    assert r0["flops_ratio"] == pytest.approx(1.0)
    r1 = evaluate_speed(fb, test.input_ids, test.attention_mask, test.labels, 1.0, batch_size=16)
    assert r1["exit_layer_counts"]["1"] == len(test) and r1["flops_ratio"] < 0.5
    layers = [evaluate_speed(fb, test.input_ids, test.attention_mask, test.labels, s)["avg_exit_layer"]
              for s in (0.0, 0.1, 0.3, 0.5, 0.8, 0.9, 1.0)]
    assert all(a >= b for a, b in zip(layers, layers[1:])), layers
    # per-row exits inside a batch give the batch-1 decisions
    single = torch.cat([fb.early_exit(test.input_ids[i:i + 1], test.attention_mask[i:i + 1], 0.5).exit_layer
                        for i in range(10)])
    assert torch.equal(single, fb.early_exit(test.input_ids[:10], test.attention_mask[:10], 0.5).exit_layer)
    save_fastbert(fb, tmp_path / "fb", extra, tdir)
    fb2, _ = load_fastbert(tmp_path / "fb")
    assert torch.equal(fb2.early_exit(test.input_ids, test.attention_mask, 0.5).logits,
                       fb.early_exit(test.input_ids, test.attention_mask, 0.5).logits)
    model.family = "albert"
    with pytest.raises(FastBertUnsupportedError, match="not supported for FastBERT"):
        FastBert(model)


# --- stage scripts, end to end on the toy teacher ----------------------------------------------------

class _script:
    """A stage script's main (what `python workflow/scripts/<name>.py ARGS` runs), in process."""

    def __init__(self, name):
        from zhbench import stage

        spec = importlib.util.spec_from_file_location(f"stage_{name}", ROOT / "workflow" / "scripts" / f"{name}.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        self.main = stage.entry_point(mod.run, mod.build_parser)


def test_stage_scripts(teacher, tmp_path):
    data, tdir = teacher
    params = {
        "seed": 42,
        "quantize": {"threads": 1, "base_config": False, "timing_min_samples": 8, "timing_max_seconds": 1},
        "preprocess": {"remove_stopwords": False},
        "distill": {"threads": 1, "alpha": 0.5, "temperature": 2.0, "timing_rows": 16, "transfer": {"copies": 2},
                    "student": {"embedding_dim": 16, "num_filters": 8},
                    "train": {"epochs": 2, "batch_size": 32, "lr": 0.01, "max_len": MAX_LEN, "eval_every": 5,
                              "threads": 1}},
        "fastbert": {"student_hidden": 16, "speeds": [0.0, 0.5, 1.0], "timing_records": 10,
                     "train": {"epochs": 1, "batch_size": 32, "lr": 0.005, "threads": 1}},
    }
    p = tmp_path / "params.yaml"
    p.write_text(yaml.safe_dump(params), encoding="utf-8")
    t = str(tmp_path)
    common = ["--params", str(p), "--data", str(data), "--granularity", "char"]
    assert _script("quantize").main(common + ["--model", str(tdir), "--out-torch", t + "/int8", "--out-onnx", t + "/onnx",
                                              "--metrics", t + "/q.json", "--timing", t + "/q_timing.json"]) == 0
    q = yaml.safe_load((tmp_path / "q.json").read_text())
    assert set(q["trained"]["test_accuracy"]) == {"fp32", "torch_int8", "ort_int8"}
    assert _script("distill_tsv").main(common + ["--teacher", str(tdir), "--out", t + "/distill", "--summary",
                                                 t + "/distill.json", "--no-progress"]) == 0
    assert _script("train_student").main(common + [
        "--teacher", str(tdir), "--vocab", str(tdir), "--distill", t + "/distill", "--out", t + "/textcnn",
        "--metrics", t + "/s.json",
        "--confusion-csv", t + "/s.csv", "--confusion-png", t + "/s.png", "--timing", t + "/s_timing.json",
        "--no-progress"]) == 0
    s = yaml.safe_load((tmp_path / "s.json").read_text())
    assert {"dev", "test", "teacher_test_accuracy", "parameters", "size_bytes"} <= set(s)
    train_rows = len((data / "char" / "train.tsv").read_text(encoding="utf-8").splitlines())
    transfer = (tmp_path / "distill" / "transfer_distill.tsv").read_text(encoding="utf-8").splitlines()
    assert len(transfer) == 2 * train_rows == s["distill"]["transfer_rows"]
    assert yaml.safe_load((tmp_path / "distill.json").read_text())["transfer"]["rows"] == 2 * train_rows
    assert _script("fastbert").main(common + ["--teacher", str(tdir), "--out", t + "/fb", "--metrics", t + "/f.json",
                                              "--timing", t + "/f_timing.json", "--no-progress"]) == 0
    f = yaml.safe_load((tmp_path / "f.json").read_text())
    assert [r["speed"] for r in f["sweep"]] == [0.0, 0.5, 1.0]
    # a teacher that is not there: one clear error, exit code 1
    assert _script("distill_tsv").main(common + ["--teacher", t + "/missing", "--out", t + "/d2", "--summary",
                                                 t + "/d2.json", "--no-progress"]) == 1

"""train_backbone --workers 2 (DDP workers, gloo on CPU) matches one process; one checkpoint."""
from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest
import yaml

from helpers import ROOT, run

pytestmark = pytest.mark.slow

CLASS_CHARS = ["体育球赛", "财经股市", "游戏玩家"]
FILLER = "的了是在新闻今日报道"
# Both runs take the same global batches (each rank its share) from the same initial weights, with
# dropout off, so they differ only in float summation order: DDP sums two half-batch gradients
# where one process sums one batch. The curves must agree to rounding, not to a learned accuracy
# that depends on the CPU.
FIRST_STEP_TOLERANCE = 1e-5   # loss of the first batch: same weights, same rows
CURVE_TOLERANCE = 1e-3        # every later step (seen: 1e-6 after 24 steps); differences may grow a little


def _split(path: Path, n: int, seed: int) -> None:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = i % 3
        tokens = [rng.choice(CLASS_CHARS[label]) for _ in range(2)] + [rng.choice(FILLER) for _ in range(rng.randint(1, 6))]
        rng.shuffle(tokens)
        rows.append(f"{' '.join(tokens)}\t{label}\n")
    path.write_text("".join(rows), encoding="utf-8")


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    d = tmp_path_factory.mktemp("ddp")
    data = d / "data"
    (data / "char").mkdir(parents=True)
    (data / "labels.txt").write_text("sports\nfinance\ngame\n", encoding="utf-8")
    for split, n, seed in (("train", 192, 1), ("dev", 60, 2), ("test", 60, 3)):
        _split(data / "char" / f"{split}.tsv", n, seed)
    params = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    params["backbones"]["train"].update(batch_size=32, max_len=12, lr=0.001, epochs=4, eval_every=12,
                                        eval_batch_size=64, threads=1)
    params["backbones"]["dropout"] = 0.0
    params["backbones"]["bert"] = {"overrides": {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}}
    (d / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    run([sys.executable, str(ROOT / "workflow/scripts/build_vocab.py"), "--params", "params.yaml",
         "--granularity", "char", "--data", "data", "--out", "vocab"], cwd=d)
    return d


def _train(project: Path, nproc: int) -> Path:
    out = project / f"models{nproc}" / "bert"
    run([str(ROOT / "workflow/python"), str(ROOT / "workflow/scripts/train_backbone.py"), "--workers", str(nproc),
         "--params", "params.yaml", "--backbone", "bert", "--granularity", "char", "--data", "data",
         "--vocab", "vocab", "--cache", "cache", "--out", str(out), "--curves", f"curves{nproc}",
         "--timing", f"timing{nproc}.json", "--no-progress"], cwd=project, timeout=600)
    return out


def _curve(project: Path, nproc: int) -> list[tuple[int, float]]:
    rows = (project / f"curves{nproc}" / "train.csv").read_text(encoding="utf-8").split()[1:]
    return [(int(step), float(loss)) for step, loss, _ in (r.split(",") for r in rows)]


def _dev_predictions(project: Path, checkpoint: Path):
    from zhbench.features import load_features
    from zhbench.models.backbones import load_classifier
    from zhbench.classify import predict

    model, extra = load_classifier(checkpoint)
    dev, _ = load_features(project / "data/char/dev.tsv", checkpoint / "tokenizer.json", extra["max_len"], "char", 3)
    logits, _ = predict(model, dev, batch_size=64)
    return logits.argmax(-1)


def test_two_process_ddp_matches_one_process_and_writes_one_checkpoint(project):
    single, ddp = _train(project, 1), _train(project, 2)
    curve1, curve2 = _curve(project, 1), _curve(project, 2)
    assert [s for s, _ in curve1] == [s for s, _ in curve2] == list(range(1, 4 * 6 + 1))
    assert abs(curve1[0][1] - curve2[0][1]) <= FIRST_STEP_TOLERANCE, (curve1[0], curve2[0])
    assert curve1[-1][1] < curve1[0][1], "the training loss did not fall at all"
    worst = max(abs(a - b) for (_, a), (_, b) in zip(curve1, curve2))
    assert worst <= CURVE_TOLERANCE, f"1 vs 2 processes: train-loss curves differ by up to {worst:.4f}"
    pred1, pred2 = _dev_predictions(project, single), _dev_predictions(project, ddp)
    assert (pred1 == pred2).float().mean() >= 0.95, "1 and 2 processes predict different dev labels"
    # Rank 0 alone writes: one checkpoint, no second copy or staging directory left beside it.
    assert sorted(p.name for p in ddp.parent.iterdir()) == ["bert"]
    assert (ddp / "model.safetensors").is_file() and (ddp / "tokenizer.json").is_file()

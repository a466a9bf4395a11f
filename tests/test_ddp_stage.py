"""train_backbone under torchrun: 2-process DDP (gloo, CPU) matches 1 process; one checkpoint."""
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
# Same global batch and schedule, but DistributedSampler deals rows in another order than the
# single-process sampler, so the two runs are not bit-identical: on this separable toy task both
# must reach the same dev accuracy within 10 points (6 of the 60 dev rows).
TOLERANCE = 0.10


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
    params["backbones"]["train"].update(batch_size=32, max_len=12, lr=0.003, epochs=20, eval_every=12,
                                        eval_batch_size=64, threads=1)
    (d / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    run([sys.executable, str(ROOT / "workflow/scripts/build_vocab.py"), "--params", "params.yaml",
         "--granularity", "char", "--data", "data", "--out", "vocab"], cwd=d)
    return d


def _train(project: Path, nproc: int) -> Path:
    out = project / f"models{nproc}" / "bert"
    run(["torchrun", "--standalone", "--nproc_per_node", str(nproc), str(ROOT / "workflow/scripts/train_backbone.py"),
         "--params", "params.yaml", "--backbone", "bert", "--granularity", "char", "--data", "data",
         "--vocab", "vocab", "--cache", "cache", "--out", str(out), "--curves", f"curves{nproc}",
         "--timing", f"timing{nproc}.json", "--no-progress"], cwd=project, timeout=600)
    return out


def _dev_accuracy(project: Path, checkpoint: Path) -> float:
    from zhbench.features import load_features
    from zhbench.models.backbones import load_classifier
    from zhbench.train import predict

    model, extra = load_classifier(checkpoint)
    dev, _ = load_features(project / "data/char/dev.tsv", checkpoint / "tokenizer.json", extra["max_len"], "char", 3)
    logits, _ = predict(model, dev, batch_size=64)
    return float((logits.argmax(-1) == dev.labels).float().mean())


def test_two_process_ddp_matches_one_process_and_writes_one_checkpoint(project):
    single, ddp = _train(project, 1), _train(project, 2)
    acc1, acc2 = _dev_accuracy(project, single), _dev_accuracy(project, ddp)
    assert acc1 > 0.9, f"single-process run did not learn the toy task (dev acc {acc1:.3f})"
    assert abs(acc1 - acc2) <= TOLERANCE, f"1 process {acc1:.3f} vs 2 processes {acc2:.3f}"
    # Rank 0 alone writes: one checkpoint, no second copy or staging directory left beside it.
    assert sorted(p.name for p in ddp.parent.iterdir()) == ["bert"]
    assert (ddp / "model.safetensors").is_file() and (ddp / "tokenizer.json").is_file()

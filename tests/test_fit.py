"""The one training loop (zhbench.fit) on tiny synthetic data: learns, is bit-reproducible, stops
early, logs the write-up's line, accumulates gradients, places and casts, runs under DDP."""
from __future__ import annotations

import logging
import random
import re

import pytest
import torch
import torch.nn as nn

from transformers.modeling_outputs import SequenceClassifierOutput

from zhbench.classify import backbone_settings, dev_evaluator, predict
from zhbench.features import load_features
from zhbench.fit import FitSettings, fit, format_iter_line, make_optimizer
from zhbench.text.vocab import build_vocab, save_tokenizer

# Three classes, each with its own characters; filler characters are shared, so the model has to
# find the distinctive ones.
CLASS_CHARS = ["体育球赛", "财经股市", "游戏玩家"]
FILLER = "的了是在新闻今日报道"


def _write_split(path, n, seed):
    rng = random.Random(seed)
    lines = []
    for i in range(n):
        label = i % 3
        tokens = [rng.choice(CLASS_CHARS[label]) for _ in range(2)] + [rng.choice(FILLER) for _ in range(rng.randint(1, 6))]
        rng.shuffle(tokens)
        lines.append(f"{' '.join(tokens)}\t{label}\n")
    path.write_text("".join(lines), encoding="utf-8")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("synthetic")
    _write_split(d / "train.tsv", 96, seed=1)
    _write_split(d / "dev.tsv", 30, seed=2)
    tok, _ = build_vocab(d / "train.tsv", "char")
    save_tokenizer(tok, d / "tokenizer.json")
    train_f, _ = load_features(d / "train.tsv", d / "tokenizer.json", 12, "char", 3)
    dev_f, _ = load_features(d / "dev.tsv", d / "tokenizer.json", 12, "char", 3)
    return train_f, dev_f, tok.get_vocab_size()


class TinyClassifier(nn.Module):
    """Stand-in with SequenceClassifier's forward signature: embeddings, masked mean, linear."""

    def __init__(self, vocab_size, num_labels, dim=16, dropout=0.1):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, dim, padding_idx=0)
        self.norm = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)  # exercises the seeded dropout RNG
        self.head = nn.Linear(dim, num_labels)

    def head_parameters(self):
        return list(self.head.parameters())

    def forward(self, input_ids, attention_mask, token_type_ids=None, labels=None):
        mask = attention_mask.unsqueeze(-1).float()
        pooled = (self.embed(input_ids) * mask).sum(1) / mask.sum(1)
        logits = self.head(self.dropout(self.norm(pooled)))
        loss = None if labels is None else nn.functional.cross_entropy(logits, labels)
        return SequenceClassifierOutput(loss=loss, logits=logits)


def _model(vocab_size, seed=0, dropout=0.1):
    torch.manual_seed(seed)  # the stage script seeds before building, as here
    return TinyClassifier(vocab_size, 3, dropout=dropout)


CFG = dict(batch_size=16, lr=0.05, epochs=8, warmup_ratio=0.1, weight_decay=0.01,
           grad_clip=1.0, eval_every=6, patience_steps=1000, seed=3, threads=1)


def train(model, train_f, dev_f, settings: FitSettings, **kwargs):
    return fit(model, train_f, settings, evaluate=dev_evaluator(dev_f, settings), **kwargs)


def TrainConfig(**kwargs) -> FitSettings:
    return FitSettings(**kwargs)


def test_training_learns(data, tmp_path):
    train_f, dev_f, vocab_size = data
    model = _model(vocab_size)
    _, loss_before = predict(model, train_f, 32)
    result = train(model, train_f, dev_f, TrainConfig(**CFG), curves_dir=tmp_path / "curves", progress=False)
    logits, loss_after = predict(model, train_f, 32)
    acc = (logits.argmax(1) == train_f.labels).float().mean().item()
    assert loss_after < 0.5 * loss_before
    assert acc >= 0.95
    assert result.steps == 8 * 6 and not result.stopped_early
    # the best dev state is what the model holds at the end
    _, dev_loss = predict(model, dev_f, 64)
    assert dev_loss == pytest.approx(result.best_val_loss, abs=1e-6)
    assert set(result.timing) >= {"device", "train_step_time", "train_epoch_time", "valid_step_time", "valid_epoch_time"}
    assert result.timing["device"]
    # curves: every step in train.csv, every evaluation in eval.csv
    train_csv = (tmp_path / "curves" / "train.csv").read_text().splitlines()
    eval_csv = (tmp_path / "curves" / "eval.csv").read_text().splitlines()
    assert train_csv[0] == "step,train_loss,train_acc" and len(train_csv) == 1 + 48
    assert eval_csv[0] == "step,train_loss,train_acc,val_loss,val_acc" and len(eval_csv) == 1 + 8
    assert eval_csv[1].startswith("6,")


def test_two_runs_bit_identical(data, tmp_path):
    train_f, dev_f, vocab_size = data
    states, curves = [], []
    for run in range(2):
        model = _model(vocab_size)
        # dynamic padding covers the bucketing sampler's RNG as well
        train(model, train_f, dev_f, TrainConfig(**{**CFG, "epochs": 2, "dynamic_padding": True}),
              curves_dir=tmp_path / f"c{run}", progress=False)
        states.append(model.state_dict())
        curves.append([(tmp_path / f"c{run}" / n).read_bytes() for n in ("train.csv", "eval.csv")])
    assert states[0].keys() == states[1].keys()
    for k in states[0]:
        assert torch.equal(states[0][k], states[1][k]), k
    assert curves[0] == curves[1]


def test_early_stop(data):
    train_f, dev_f, vocab_size = data
    model = _model(vocab_size)
    # lr 0 never improves on the first evaluation: stop patience_steps after it
    cfg = TrainConfig(**{**CFG, "lr": 0.0, "epochs": 50, "eval_every": 2, "patience_steps": 4})
    result = train(model, train_f, dev_f, cfg, progress=False)
    assert result.stopped_early and result.best_step == 2 and result.steps == 6


def test_max_steps_caps_training(data):
    train_f, dev_f, vocab_size = data
    result = train(_model(vocab_size), train_f, dev_f, TrainConfig(**{**CFG, "max_steps": 5}), progress=False)
    assert result.steps == 5 and result.history[-1]["step"] == 5  # the last step is always evaluated


def test_log_line_format(data, caplog):
    assert format_iter_line(200, 0.384, 0.890625, 0.3212, 0.9048, 111, True) == (
        "Iter: 200, Train Loss: 0.38, Train Acc: 89.06%, Val Loss: 0.32, Val Acc: 90.48%, Time: 0:01:51 *")
    assert format_iter_line(1000, 0.21, 0.953125, 0.24, 0.9263, 3 * 3600 + 542, False).endswith("Time: 3:09:02")
    train_f, dev_f, vocab_size = data
    with caplog.at_level(logging.INFO, logger="zhbench.fit"):
        train(_model(vocab_size), train_f, dev_f, TrainConfig(**{**CFG, "epochs": 2}), progress=False)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Iter:")]
    pattern = re.compile(r"^Iter: \d+, Train Loss: \d+\.\d\d, Train Acc: \d+\.\d\d%, "
                         r"Val Loss: \d+\.\d\d, Val Acc: \d+\.\d\d%, Time: \d+:\d\d:\d\d( \*)?$")
    assert len(lines) == 2 and all(pattern.match(line) for line in lines)
    assert lines[0].endswith(" *")  # the first evaluation is always a new best


def test_unknown_or_bad_settings_are_rejected():
    with pytest.raises(ValueError, match="unknown keys"):
        FitSettings.from_dict({"batch_size": 8, "learning_rate": 1e-3})
    assert FitSettings.from_dict({"lr": "5e-4"}).lr == 5e-4  # PyYAML's reading of 5e-4
    with pytest.raises(ValueError, match="lr must be a number"):
        FitSettings.from_dict({"lr": "fast"})
    for bad in ({"precision": "int4"}, {"device": "tpu"}, {"optimizer": "sgd"}, {"grad_accum_steps": 0}):
        with pytest.raises(ValueError):
            FitSettings.from_dict(bad)


def test_real_backbone_train_save_load_roundtrip(data, tmp_path):
    """The loop with a real (shrunk) backbone; the saved checkpoint predicts exactly the same."""
    backbones = pytest.importorskip("zhbench.models.backbones")
    train_f, dev_f, vocab_size = data
    torch.manual_seed(0)
    tiny = {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64}
    model = backbones.SequenceClassifier(
        backbones.build_backbone("bert", "mini", vocab_size=vocab_size, overrides=tiny), "bert", 3, 0.1)
    result = train(model, train_f, dev_f, TrainConfig(**{**CFG, "epochs": 2, "lr": 0.005}), progress=False)
    assert result.steps == 12
    logits, loss = predict(model, dev_f, 64)
    backbones.save_classifier(model, tmp_path / "ckpt", {"max_len": 12})
    loaded, extra = backbones.load_classifier(tmp_path / "ckpt")
    logits2, loss2 = predict(loaded, dev_f, 64)
    assert extra == {"max_len": 12} and torch.equal(logits, logits2) and loss == loss2


def test_backbone_settings_resolution():
    section = {
        "size": "mini", "dropout": 0.1,
        "granularities": {"char": ["bert", "xlnet"], "word": ["bert"]},
        "train": {"batch_size": 64, "max_len": 32, "lr": 5e-4, "epochs": 2},
        "xlnet": {"train": {"lr": 1e-4}, "overrides": {"num_hidden_layers": 2}},
    }
    s = backbone_settings(section, "xlnet", "char", seed=7)
    assert s.train.lr == 1e-4 and s.train.batch_size == 64 and s.train.seed == 7
    assert s.overrides == {"num_hidden_layers": 2} and s.pretrained is None and s.size == "mini"
    assert s.max_len == 32
    assert backbone_settings(section, "bert", "word", seed=7).train.lr == 5e-4
    with pytest.raises(ValueError, match="not listed"):
        backbone_settings(section, "xlnet", "word", seed=7)
    # per-granularity keys win over the backbone's own, which win over the shared defaults
    section["bert"] = {"dropout": 0.2, "word": {"pretrained": "junnyu/wobert_chinese_plus_base",
                                                "train": {"lr": 2e-5, "max_len": 64}}}
    word, char = backbone_settings(section, "bert", "word", 7), backbone_settings(section, "bert", "char", 7)
    assert (word.pretrained, word.train.lr, word.max_len, word.dropout) == ("junnyu/wobert_chinese_plus_base", 2e-5, 64, 0.2)
    assert (char.pretrained, char.train.lr, char.max_len, char.dropout) == (None, 5e-4, 32, 0.2)
    section["bert"] = {"word": {"tokenizer": "x"}}
    with pytest.raises(ValueError, match="backbones.bert.word has unknown keys"):
        backbone_settings(section, "bert", "word", 7)


def _ddp_worker(rank, world, init_file, train_f, dev_f, vocab_size, out_dir):
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        model = _model(vocab_size)
        result = train(model, train_f, dev_f, TrainConfig(**{**CFG, "epochs": 4}), progress=False)
        torch.save({"state": model.state_dict(), "history": result.history, "steps": result.steps},
                   f"{out_dir}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.mark.slow  # spawning two interpreters costs ~15 s CPU (~50 s wall on a busy box)
def test_distributed_two_ranks_gloo(data, tmp_path):
    """torchrun-style DDP on CPU: ranks split the data, stay in lockstep and end with equal weights."""
    import torch.multiprocessing as mp

    train_f, dev_f, vocab_size = data
    mp.spawn(_ddp_worker, args=(2, tmp_path / "rdzv", train_f, dev_f, vocab_size, tmp_path), nprocs=2, join=True)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt") for r in range(2))
    # batch_size is the global batch: each of the 2 ranks takes 8 rows of its 48 per step, so the
    # step count (and the learning-rate schedule) is that of one process: 96 / 16 = 6 per epoch.
    assert r0["steps"] == r1["steps"] == 4 * 6
    assert r0["history"] == r1["history"]       # dev numbers were summed over ranks
    for k in r0["state"]:
        assert torch.equal(r0["state"][k], r1["state"][k]), k
    assert r0["history"][-1]["val_loss"] < r0["history"][0]["val_loss"]


def test_gradient_accumulation_takes_the_same_steps_as_one_batch(data):
    """Without dropout, 4 micro-batches of 4 rows step like one batch of 16 (to float rounding): the
    batch is split, the loss weighted by each part's rows, the schedule unchanged."""
    train_f, dev_f, vocab_size = data
    states = []
    for accum in (1, 4):
        model = _model(vocab_size, dropout=0.0)
        result = fit(model, train_f, TrainConfig(**{**CFG, "epochs": 2, "grad_accum_steps": accum}), progress=False)
        assert result.steps == 12 and result.timing["grad_accum_steps"] == accum
        states.append(model.state_dict())
    for k in states[0]:
        assert torch.allclose(states[0][k], states[1][k], atol=1e-5), k


def test_head_parameters_get_head_lr_and_adam_is_plain(data):
    _, _, vocab_size = data
    model = _model(vocab_size)
    opt, _ = make_optimizer(model, FitSettings(lr=1e-3, head_lr=5e-2), total_steps=10)
    assert [g["initial_lr"] for g in opt.param_groups] == [1e-3, 1e-3, 5e-2]  # warmup starts at 0
    assert opt.param_groups[2]["params"] == model.head_parameters()
    opt, sched = make_optimizer(model, FitSettings(lr=1e-3, optimizer="adam", schedule="constant"), total_steps=10)
    assert type(opt) is torch.optim.Adam and len(opt.param_groups) == 1
    sched.step()
    assert opt.param_groups[0]["lr"] == 1e-3


def test_bf16_autocast_trains_on_cpu(data):
    """bf16 is a setting, not a code path of its own: the same loop, the forward under autocast."""
    train_f, dev_f, vocab_size = data
    result = train(_model(vocab_size), train_f, dev_f, TrainConfig(**{**CFG, "epochs": 1, "precision": "bf16"}),
                   progress=False)
    assert result.timing["precision"] == "bf16" and all(r["val_loss"] == r["val_loss"] for r in result.history)


def test_devices_and_precision_resolve_or_fail_clearly(monkeypatch):
    from zhbench import devices

    assert devices.resolve_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="no CUDA GPU"):
            devices.resolve_device("cuda")
    cpu = torch.device("cpu")
    monkeypatch.setattr(devices, "cpu_has_native_bf16", lambda: True)
    assert devices.resolve_precision("auto", cpu) == "bf16"
    monkeypatch.setattr(devices, "cpu_has_native_bf16", lambda: False)
    assert devices.resolve_precision("auto", cpu) == "fp32"  # emulated bf16 is slower than fp32
    assert devices.resolve_precision("fp32", cpu) == "fp32"
    with pytest.raises(ValueError, match="fp16 needs a GPU"):
        devices.resolve_precision("fp16", cpu)
    info = devices.cpu_info()
    assert info["model"] and set(info["flags"]) == set(devices.CPU_FLAGS)

"""Sentence-pair matching (LCQMC): `[CLS] s1 [SEP] s2 [SEP]` with segment ids into a backbone classifier.

The model is backbones.SequenceClassifier (it takes token_type_ids); training is zhbench.fit with
fixed epochs and no selection on the evaluation split, which is the reported number.

The write-up (brightmart albert_zh run_classifier) reports, per model: global_step, eval_accuracy,
eval_loss, loss and the number of training samples; we add F1 of the positive class ("same
intent"). Its 3749 steps are 3 epochs of 20k pairs at batch 16; the lcqmc-devtest variant trains on
the 8,802 dev pairs (the 238,766-pair train split is not obtainable) and scores the 12,500 test pairs.
"""
from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from tokenizers import Tokenizer
from tqdm.auto import tqdm

from zhbench.data.lcqmc import Pair
from zhbench.devices import device_name
from zhbench.fit import FitResult, FitSettings, fit
from zhbench.io import atomic_dir, read_json, write_json
from zhbench.text.vocab import CLS, SEP, UNK, build_wordlevel

log = logging.getLogger(__name__)

CLASSIFIER_DIR = "classifier"   # backbones.save_classifier layout
TOKENIZER_FILE = "tokenizer.json"
SUMMARY_FILE = "train.json"     # training summary (deterministic)


@dataclass
class PairConfig:
    backbone: str = "bert"
    size: str = "mini"
    pretrained: str | None = None
    overrides: dict = field(default_factory=dict)
    dropout: float = 0.1
    max_len: int = 128            # the write-up's max_seq_length; LCQMC pairs are ~25 chars, so batches stay short
    min_frequency: int = 1
    max_train_pairs: int | None = None  # first N training pairs (profiles cap the CPU cost)
    batch_size: int = 16          # the write-up's train_batch_size
    eval_batch_size: int = 64
    epochs: int = 3               # the write-up's num_train_epochs
    max_steps: int | None = None
    lr: float = 5e-4              # scratch mini; the paper profile sets the write-up's 5e-5
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    grad_clip: float = 1.0
    device: str = "cpu"           # auto | cpu | cuda | mps
    precision: str = "fp32"       # auto | fp32 | bf16 | fp16
    grad_accum_steps: int = 1
    seed: int = 42
    threads: int = 1

    @classmethod
    def from_dict(cls, d: dict) -> "PairConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"params pair: unknown settings {unknown}; expected some of {sorted(known)}")
        cfg = cls(**d)
        if cfg.max_len < 5:
            raise ValueError(f"params pair.max_len must be at least 5 ([CLS] a [SEP] b [SEP]), got {cfg.max_len}")
        return cfg


def resolve_config(section: dict, backbone: str, seed: int) -> PairConfig:
    """The params.yaml `pair:` section: PairConfig fields as shared defaults, `variant`, `backbones`
    (the list the workflow runs), `max_eval_pairs` (evaluate stage only: first N evaluation pairs,
    null = all; smoke only) and `per_backbone.<name>` (fields to override for one backbone)."""
    allowed = section.get("backbones") or []
    if backbone not in allowed:
        raise ValueError(f"backbone {backbone!r} is not listed in params pair.backbones: {allowed}")
    shared = {k: v for k, v in section.items() if k not in ("variant", "backbones", "per_backbone", "max_eval_pairs")}
    own = dict((section.get("per_backbone") or {}).get(backbone) or {})
    own.pop("max_eval_pairs", None)
    return PairConfig.from_dict({**shared, **own, "backbone": backbone, "seed": seed})


# --- vocabulary and encoding ------------------------------------------------------------------------

def build_char_vocab(pairs: Sequence[Pair], min_frequency: int = 1) -> Tokenizer:
    """WordLevel char vocabulary (text/vocab.py) over both sentences of the training pairs."""
    return build_wordlevel(Counter(c for p in pairs for c in p.s1 + p.s2), min_frequency)


class VocabPairEncoder:
    """The project's char vocabulary: [CLS] a [SEP] b [SEP], segment 0 then 1, [PAD]=0 on the right."""

    kind = "vocab"

    def __init__(self, tokenizer: Tokenizer):
        self.tokenizer = tokenizer
        self.vocab = tokenizer.get_vocab()
        self.vocab_size = tokenizer.get_vocab_size()

    def encode_pair(self, s1: str, s2: str, max_len: int) -> tuple[list[int], list[int]]:
        """Longest-first truncation to max_len (BERT's rule: the longer sentence loses a char)."""
        vocab, unk = self.vocab, self.vocab[UNK]
        a = [vocab.get(c, unk) for c in s1]
        b = [vocab.get(c, unk) for c in s2]
        while len(a) + len(b) > max_len - 3:
            (a if len(a) >= len(b) else b).pop()
        ids = [vocab[CLS]] + a + [vocab[SEP]] + b + [vocab[SEP]]
        return ids, [0] * (len(a) + 2) + [1] * (len(b) + 1)

    def collate(self, pairs: Sequence[Pair], max_len: int) -> dict[str, torch.Tensor]:
        rows = [self.encode_pair(p.s1, p.s2, max_len) for p in pairs]
        n, width = len(rows), max(len(ids) for ids, _ in rows)
        ids = torch.zeros(n, width, dtype=torch.long)
        seg = torch.zeros(n, width, dtype=torch.long)
        attn = torch.zeros(n, width, dtype=torch.long)
        for i, (row_ids, segments) in enumerate(rows):
            k = len(row_ids)
            ids[i, :k] = torch.tensor(row_ids)
            seg[i, :k] = torch.tensor(segments)
            attn[i, :k] = 1
        return {"input_ids": ids, "attention_mask": attn, "token_type_ids": seg,
                "labels": torch.tensor([p.label for p in pairs], dtype=torch.long)}

    def save(self, model_dir) -> dict:
        (Path(model_dir) / TOKENIZER_FILE).write_text(self.tokenizer.to_str(pretty=True), encoding="utf-8")
        return {"kind": self.kind}


class CheckpointPairEncoder:
    """A pretrained checkpoint's tokenizer: its own pair framing and segment ids, longest-first."""

    kind = "checkpoint"

    def __init__(self, tokenizer, family: str):
        self.tokenizer, self.family = tokenizer, family
        self.vocab_size = len(tokenizer)

    def collate(self, pairs: Sequence[Pair], max_len: int) -> dict[str, torch.Tensor]:
        from zhbench.models.checkpoint_encoding import encode_pairs

        enc = encode_pairs(self.tokenizer, [p.s1 for p in pairs], [p.s2 for p in pairs], max_len, dynamic_padding=True)
        return {**enc, "labels": torch.tensor([p.label for p in pairs], dtype=torch.long)}

    def save(self, model_dir) -> dict:
        self.tokenizer.save_pretrained(str(model_dir))
        return {"kind": self.kind, "family": self.family}


def training_pair_encoder(cfg: "PairConfig", pairs: Sequence[Pair]):
    """The checkpoint's tokenizer for a pretrained backbone, else a vocabulary of the training chars."""
    if cfg.pretrained:
        from zhbench.models.checkpoint_tokenizer import load_checkpoint_tokenizer

        return CheckpointPairEncoder(load_checkpoint_tokenizer(cfg.backbone, cfg.pretrained), cfg.backbone)
    return VocabPairEncoder(build_char_vocab(pairs, cfg.min_frequency))


# --- model and training -----------------------------------------------------------------------------

def build_classifier(cfg: PairConfig, encoder):
    from zhbench.models.backbones import SequenceClassifier, build_backbone

    torch.manual_seed(cfg.seed)
    backbone = build_backbone(cfg.backbone, cfg.size, vocab_size=encoder.vocab_size, max_positions=cfg.max_len,
                              pretrained=cfg.pretrained, overrides=cfg.overrides)
    if cfg.pretrained is not None:
        from zhbench.models.checkpoint_tokenizer import check_vocab_fits

        check_vocab_fits(backbone.config, encoder.tokenizer)
    return SequenceClassifier(backbone, cfg.backbone, 2, cfg.dropout)


class PairData:
    """Sentence pairs as fit reads them: len() and batch(index) -> collated tensors."""

    def __init__(self, pairs: Sequence[Pair], encoder, max_len: int):
        self.pairs, self.encoder, self.max_len = pairs, encoder, max_len

    def __len__(self) -> int:
        return len(self.pairs)

    def batch(self, index: Sequence[int]) -> dict[str, torch.Tensor]:
        return self.encoder.collate([self.pairs[i] for i in index], self.max_len)


def fit_settings(cfg: PairConfig) -> FitSettings:
    return FitSettings.from_dict({
        "epochs": cfg.epochs, "batch_size": cfg.batch_size, "max_steps": cfg.max_steps, "lr": cfg.lr,
        "weight_decay": cfg.weight_decay, "warmup_ratio": cfg.warmup_ratio, "grad_clip": cfg.grad_clip,
        "seed": cfg.seed, "threads": cfg.threads, "device": cfg.device, "precision": cfg.precision,
        "grad_accum_steps": cfg.grad_accum_steps}, "params pair")


def train_classifier(model, pairs: Sequence[Pair], encoder, cfg: PairConfig, progress: bool = True) -> FitResult:
    """Fixed epochs (or max_steps), seeded shuffle and dropout, through zhbench.fit."""
    log.info("training %s pair classifier on %d pairs", cfg.backbone, len(pairs))
    return fit(model, PairData(pairs, encoder, cfg.max_len), fit_settings(cfg), progress=progress,
               desc=f"train {cfg.backbone}")


@torch.no_grad()
def evaluate(model, pairs: Sequence[Pair], encoder, max_len: int, batch_size: int = 64,
             progress: bool = False) -> tuple[dict, list[int], dict]:
    """(metrics, predicted labels in file order, timing). F1/precision/recall are of label 1 (same intent)."""
    model.eval()
    preds: list[int] = []
    loss_sum, seconds, batches = 0.0, 0.0, 0
    rows = pairs
    for b in tqdm(range(0, len(rows), batch_size), desc="evaluate pair", unit="batch", disable=not progress,
                  mininterval=1.0):
        t0 = time.perf_counter()
        batch = encoder.collate(rows[b:b + batch_size], max_len)
        labels = batch.pop("labels")
        logits = model(**batch).logits
        loss_sum += F.cross_entropy(logits, labels, reduction="sum").item()
        preds.extend(logits.argmax(dim=1).tolist())
        seconds += time.perf_counter() - t0
        batches += 1
    gold = [r.label for r in rows]
    tp = sum(1 for g, p in zip(gold, preds) if g == p == 1)
    fp = sum(1 for g, p in zip(gold, preds) if g == 0 and p == 1)
    fn = sum(1 for g, p in zip(gold, preds) if g == 1 and p == 0)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    metrics = {
        "eval_accuracy": sum(1 for g, p in zip(gold, preds) if g == p) / len(rows),
        "eval_loss": loss_sum / len(rows),
        "eval_precision": precision, "eval_recall": recall,
        "eval_f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
        "eval_samples": len(rows),
    }
    timing = {"device": device_name(), "eval_batch_size": batch_size,
              "valid_step_time": seconds / max(batches, 1), "valid_epoch_time": seconds}
    return metrics, preds, timing


# --- saving -----------------------------------------------------------------------------------------

def save_pair_model(model, out_dir, encoder, cfg: PairConfig, summary: dict) -> None:
    """out_dir (atomic): classifier/ (backbones.save_classifier), the encoder's tokenizer files and
    train.json (the deterministic training summary; measured times live outside the model dir)."""
    from zhbench.models.backbones import save_classifier

    with atomic_dir(out_dir) as tmp:
        record = encoder.save(tmp)
        save_classifier(model, tmp / CLASSIFIER_DIR, extra={"max_len": cfg.max_len, "config": asdict(cfg),
                                                           "encoder": record})
        write_json(tmp / SUMMARY_FILE, summary)


def load_pair_model(model_dir) -> tuple[Any, Any, PairConfig, dict]:
    """(model, encoder, config, training summary) of a dir written by save_pair_model."""
    from zhbench.models.backbones import load_classifier

    model_dir = Path(model_dir)
    model, extra = load_classifier(model_dir / CLASSIFIER_DIR)
    record = extra.get("encoder") or {"kind": "vocab"}
    if record["kind"] == "checkpoint":
        from zhbench.models.checkpoint_tokenizer import load_checkpoint_tokenizer

        encoder = CheckpointPairEncoder(load_checkpoint_tokenizer(record["family"], model_dir), record["family"])
    else:
        encoder = VocabPairEncoder(Tokenizer.from_file(str(model_dir / TOKENIZER_FILE)))
    return model, encoder, PairConfig.from_dict(extra["config"]), read_json(model_dir / SUMMARY_FILE)

"""NER with a BERT+CRF character tagger: vocabulary, encoding, training, prediction and seqeval metrics.

The functions take values, not params: the stage scripts (workflow/scripts/train_ner.py,
evaluate_ner.py) read params.yaml, build an `NerConfig` and call them.

Long sentences are cut into windows of `max_len - 2` characters (People's Daily has sentences of
570+ characters; CLUENER's longest is 50). Training sees every window; prediction tags every window
and joins them back, so every character of the evaluation split is tagged and scored (nothing is
truncated away). An entity cut by a window boundary can still be predicted whole, because the
lenient BIO decoding joins `B-X .. | I-X ..` across the seam.
"""
from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Sequence

import torch
from tokenizers import Tokenizer
from tqdm.auto import tqdm

from zhbench.data.ner import (CLUENER_DISPLAY, CLUENER_TYPES, PD1998_DISPLAY, PD1998_TYPES, Sentence,
                              read_cluener, read_pd1998)
from zhbench.devices import device_name
from zhbench.encoders import starting_point
from zhbench.fit import FitResult, FitSettings, fit
from zhbench.models.crf_tagger import CrfTagger
from zhbench.text.vocab import CLS, SEP, UNK, build_wordlevel

log = logging.getLogger(__name__)


# --- dataset variants -------------------------------------------------------------------------------

@dataclass(frozen=True)
class NerVariant:
    name: str
    format: str            # cluener | pd1998
    types: tuple[str, ...]
    display: dict[str, str]
    train_split: str       # which upstream split trains (named honestly in metrics)
    eval_split: str        # which upstream split is scored
    train_file: str        # file names under data/raw/<dataset>/
    eval_file: str


NER_VARIANTS: dict[str, NerVariant] = {
    "cluener": NerVariant("cluener", "cluener", CLUENER_TYPES, CLUENER_DISPLAY,
                          "train", "dev", "train.json", "dev.json"),  # the official test is unlabelled
    # example.train (20,864 sentences) is not obtainable: train on dev, score on test
    "pd1998-devtest": NerVariant("pd1998-devtest", "pd1998", PD1998_TYPES, PD1998_DISPLAY,
                                 "dev", "test", "example.dev", "example.test"),
}


def get_variant(name: str) -> NerVariant:
    if name not in NER_VARIANTS:
        raise ValueError(f"unknown NER variant {name!r}; known: {', '.join(NER_VARIANTS)}")
    return NER_VARIANTS[name]


def read_sentences(variant: NerVariant, path, on_nested: str = "error") -> tuple[list[Sentence], int]:
    """(sentences, number of nested spans dropped). on_nested: see data.ner.read_cluener."""
    if variant.format == "pd1998":
        return read_pd1998(path, variant.types), 0
    dropped: list = []
    sentences = read_cluener(path, types=variant.types, on_nested=on_nested, dropped=dropped)
    for span in dropped:
        log.warning("%s: dropped %s span [%d, %d] nested in another span", path, span.type, span.start, span.end)
    return sentences, len(dropped)


# --- config -----------------------------------------------------------------------------------------

@dataclass
class NerConfig:
    backbone: str = "bert"        # any build_backbone family whose first token is [CLS]
    size: str = "mini"            # mini (from scratch) | base (paper shape)
    pretrained: str | None = None # hub id / local dir (paper profile); None = random init
    overrides: dict = field(default_factory=dict)
    dropout: float = 0.1
    max_len: int = 64             # tokens incl. [CLS]/[SEP]: windows of max_len - 2 characters
    min_frequency: int = 1        # char vocabulary: keep chars seen this often in the training split
    max_train_sentences: int | None = None  # first N training sentences (profiles cap the CPU cost)
    batch_size: int = 32
    eval_batch_size: int = 64
    epochs: int = 5               # the write-up trains 5 epochs
    max_steps: int | None = None  # hard cap on optimizer steps; None = epochs decide
    lr: float = 5e-4              # backbone; scratch mini wants more than pretrained BERT's 3e-5
    head_lr: float = 5e-3         # emission layer + CRF transitions (new parameters, learn faster)
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    grad_clip: float = 1.0
    seed: int = 42
    threads: int = 1
    device: str = "cpu"           # auto | cpu | cuda | mps
    precision: str = "fp32"       # auto | fp32 | bf16 | fp16
    grad_accum_steps: int = 1

    def fit_settings(self) -> FitSettings:
        """How the tagger trains: fixed epochs (no selection on the evaluation split, it is the reported
        number), AdamW with the head (emission layer + CRF) at head_lr, linear warmup/decay."""
        return FitSettings.from_dict({
            "epochs": self.epochs, "batch_size": self.batch_size, "max_steps": self.max_steps, "lr": self.lr,
            "head_lr": self.head_lr, "weight_decay": self.weight_decay, "warmup_ratio": self.warmup_ratio,
            "grad_clip": self.grad_clip, "seed": self.seed, "threads": self.threads, "device": self.device,
            "precision": self.precision, "grad_accum_steps": self.grad_accum_steps}, "params ner")

    @classmethod
    def from_dict(cls, d: dict) -> "NerConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"params ner: unknown settings {unknown}; expected some of {sorted(known)}")
        cfg = cls(**d)
        if cfg.max_len < 3:
            raise ValueError(f"params ner.max_len must be at least 3 ([CLS] c [SEP]), got {cfg.max_len}")
        return cfg


# --- vocabulary and encoding ------------------------------------------------------------------------

def build_char_vocab(sentences: Sequence[Sentence], min_frequency: int = 1) -> Tokenizer:
    """A WordLevel tokenizer over the training characters (text/vocab.py), [PAD]=0 [UNK] [CLS] [SEP] [MASK].

    Characters are looked up one by one (VocabCharEncoder), not through the tokenizer's whitespace
    pre-tokenizer, so that a space inside a text stays one position and tags stay aligned."""
    return build_wordlevel(Counter(c for s in sentences for c in s.chars), min_frequency)


@dataclass
class Window:
    sentence: int     # index into the sentence list
    offset: int       # first character of the window
    chars: list[str]
    tags: list[int]   # one tag id per character


def make_windows(sentences: Sequence[Sentence], tag_ids: dict[str, int], width: int) -> list[Window]:
    """Every sentence cut into windows of at most `width` characters, in file order."""
    out: list[Window] = []
    for i, s in enumerate(sentences):
        tags = [tag_ids[t] for t in s.tags]
        for off in range(0, len(s.chars), width):
            out.append(Window(i, off, list(s.chars[off:off + width]), tags[off:off + width]))
    return out


class VocabCharEncoder:
    """The project's char vocabulary (a WordLevel tokenizer.json), [CLS] chars [SEP], [PAD]=0 on the right."""

    kind = "vocab"

    def __init__(self, tokenizer: Tokenizer):
        self.tokenizer = tokenizer
        self.vocab = tokenizer.get_vocab()
        self.vocab_size = tokenizer.get_vocab_size()

    def width(self, max_len: int) -> int:
        return max_len - 2

    def collate(self, windows: Sequence[Window], max_len: int) -> dict[str, torch.Tensor]:
        """Pad to the longest window of the batch ([PAD]=0). char_mask is 1 on characters only."""
        unk, cls, sep = self.vocab[UNK], self.vocab[CLS], self.vocab[SEP]
        n, width = len(windows), max(len(w.chars) for w in windows) + 2
        ids = torch.zeros(n, width, dtype=torch.long)
        tags = torch.zeros(n, width, dtype=torch.long)
        attn = torch.zeros(n, width, dtype=torch.long)
        chars = torch.zeros(n, width, dtype=torch.long)
        for r, w in enumerate(windows):
            k = len(w.chars) + 2
            ids[r, :k] = torch.tensor([cls] + [self.vocab.get(c, unk) for c in w.chars] + [sep])
            tags[r, 1:k - 1] = torch.tensor(w.tags)
            attn[r, :k] = 1
            chars[r, 1:k - 1] = 1
        return {"input_ids": ids, "attention_mask": attn, "char_mask": chars, "tags": tags}

    def save(self, model_dir) -> dict:
        (Path(model_dir) / "tokenizer.json").write_text(self.tokenizer.to_str(pretty=True), encoding="utf-8")
        return {"kind": self.kind}


class CheckpointCharEncoder:
    """A pretrained checkpoint's tokenizer, one position per character in the family's framing
    (models/checkpoint_encoding.encode_characters)."""

    kind = "checkpoint"

    def __init__(self, tokenizer, family: str):
        self.tokenizer, self.family = tokenizer, family
        self.vocab_size = len(tokenizer)

    def width(self, max_len: int) -> int:
        from zhbench.models.checkpoint_encoding import characters_per_window

        return characters_per_window(self.tokenizer, max_len)

    def collate(self, windows: Sequence[Window], max_len: int) -> dict[str, torch.Tensor]:
        from zhbench.models.checkpoint_encoding import encode_characters

        enc = encode_characters(self.tokenizer, [w.chars for w in windows], max_len, dynamic_padding=True)
        tags = torch.zeros_like(enc["input_ids"])
        for r, w in enumerate(windows):
            tags[r, enc["char_mask"][r].bool()] = torch.tensor(w.tags)
        return {**enc, "tags": tags}

    def save(self, model_dir) -> dict:
        self.tokenizer.save_pretrained(str(model_dir))
        return {"kind": self.kind, "family": self.family}


def training_char_encoder(cfg: "NerConfig", sentences: Sequence[Sentence]):
    """The checkpoint's tokenizer for a pretrained backbone, else a vocabulary of the training chars."""
    if cfg.pretrained:
        from zhbench.models.checkpoint_tokenizer import load_checkpoint_tokenizer

        return CheckpointCharEncoder(load_checkpoint_tokenizer(cfg.backbone, cfg.pretrained), cfg.backbone)
    return VocabCharEncoder(build_char_vocab(sentences, cfg.min_frequency))


def load_char_encoder(model_dir, extra: dict):
    record = extra.get("encoder") or {"kind": "vocab"}
    if record["kind"] == "checkpoint":
        from zhbench.models.checkpoint_tokenizer import load_checkpoint_tokenizer

        return CheckpointCharEncoder(load_checkpoint_tokenizer(record["family"], model_dir), record["family"])
    return VocabCharEncoder(Tokenizer.from_file(str(Path(model_dir) / "tokenizer.json")))


class WindowData:
    """Training windows as fit reads them: len() and batch(index) -> collated tensors."""

    def __init__(self, windows: Sequence[Window], encoder, max_len: int):
        self.windows, self.encoder, self.max_len = windows, encoder, max_len

    def __len__(self) -> int:
        return len(self.windows)

    def batch(self, index: Sequence[int]) -> dict[str, torch.Tensor]:
        return self.encoder.collate([self.windows[i] for i in index], self.max_len)


# --- model ------------------------------------------------------------------------------------------

def build_tagger(cfg: NerConfig, encoder, num_tags: int) -> CrfTagger:
    """Seeds torch first, so the random init is the same on every run."""
    from zhbench.models.backbones import build_backbone

    torch.manual_seed(cfg.seed)
    backbone = build_backbone(cfg.backbone, cfg.size, vocab_size=encoder.vocab_size, max_positions=cfg.max_len,
                              pretrained=cfg.pretrained, overrides=cfg.overrides)
    if cfg.pretrained is not None:
        from zhbench.models.checkpoint_tokenizer import check_vocab_fits

        check_vocab_fits(backbone.config, encoder.tokenizer)
    return CrfTagger(backbone, cfg.backbone, num_tags, cfg.dropout)


# --- training ---------------------------------------------------------------------------------------

def train_tagger(model: CrfTagger, windows: Sequence[Window], encoder, cfg: NerConfig,
                 progress: bool = True) -> FitResult:
    """Train in place for cfg.epochs (or cfg.max_steps) through zhbench.fit; deterministic on CPU."""
    log.info("training %s+CRF on %d windows", cfg.backbone, len(windows))
    return fit(model, WindowData(windows, encoder, cfg.max_len), cfg.fit_settings(), progress=progress,
               desc="train ner")


# --- prediction and metrics -------------------------------------------------------------------------

@torch.no_grad()
def predict(model: CrfTagger, sentences: Sequence[Sentence], encoder, tags: Sequence[str],
            max_len: int, batch_size: int = 64, progress: bool = False) -> tuple[list[list[str]], float, dict]:
    """(predicted BIO tags per sentence, mean gold NLL per window, timing).

    Windows are scored in file order; each sentence's windows are joined back in order."""
    tag_ids = {t: i for i, t in enumerate(tags)}
    windows = make_windows(sentences, tag_ids, encoder.width(max_len))
    model.eval()
    predicted: list[list[str]] = [[] for _ in sentences]
    nll_sum, seconds, batches = 0.0, 0.0, 0
    for b in tqdm(range(0, len(windows), batch_size), desc="predict ner", unit="batch", disable=not progress,
                  mininterval=1.0):
        t0 = time.perf_counter()
        chunk = windows[b:b + batch_size]
        batch = encoder.collate(chunk, max_len)
        paths, nll = model.decode(**batch)
        seconds += time.perf_counter() - t0
        batches += 1
        nll_sum += float(nll.sum())
        for w, path in zip(chunk, paths):
            assert len(predicted[w.sentence]) == w.offset  # windows come in order
            predicted[w.sentence].extend(tags[i] for i in path)
    timing = {"device": device_name(), "eval_windows": len(windows), "eval_batch_size": batch_size,
              "valid_step_time": seconds / max(batches, 1), "valid_epoch_time": seconds}
    return predicted, nll_sum / max(len(windows), 1), timing


def ner_metrics(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]], types: Sequence[str],
                display: dict[str, str]) -> dict[str, Any]:
    """Entity-level scores with seqeval (default conlleval-style chunking, exact span + type match).

    micro: precision/recall/f1 over all entities (the write-up's valid_acc/valid_recall/valid_f1).
    per_entity: keyed by the write-up's display names; a type absent from both gold and predictions
    scores 0 with support 0. overall_macro_f1: mean of the per-type F1 over all declared types
    (the write-up's "Overall@Macro" row)."""
    from seqeval.metrics import classification_report

    report = classification_report([list(g) for g in gold], [list(p) for p in predicted],
                                   output_dict=True, zero_division=0)
    unknown = sorted(set(report) - set(types) - {"micro avg", "macro avg", "weighted avg"})
    if unknown:
        raise ValueError(f"tags of unknown entity types {unknown}; expected {list(types)}")
    per_entity = {}
    for t in types:
        r = report.get(t, {})
        per_entity[display[t]] = {"type": t, "precision": float(r.get("precision", 0.0)),
                                  "recall": float(r.get("recall", 0.0)), "f1": float(r.get("f1-score", 0.0)),
                                  "support": int(r.get("support", 0))}
    micro = report.get("micro avg", {})
    return {
        "precision": float(micro.get("precision", 0.0)),
        "recall": float(micro.get("recall", 0.0)),
        "f1": float(micro.get("f1-score", 0.0)),
        "support": int(micro.get("support", 0)),
        "overall_macro_f1": sum(e["f1"] for e in per_entity.values()) / len(per_entity),
        "per_entity": per_entity,
        "entity_order": [display[t] for t in types],
    }


def describe_model(cfg: NerConfig) -> str:
    """The write-up's model name: bert-base-chinese+CRF for the paper profile, bert-mini+CRF here."""
    return f"{starting_point(cfg.pretrained, cfg.backbone, cfg.size)}+CRF"



# --- params -----------------------------------------------------------------------------------------

# keys of the `ner:` section that are not NerConfig fields
STAGE_KEYS = ("variants", "per_variant", "on_nested_span", "max_eval_sentences")


def resolve_config(section: dict, variant: str, seed: int) -> tuple[NerConfig, str]:
    """(NerConfig, on_nested_span) for one variant from the params.yaml `ner:` section.

    The section holds NerConfig fields as shared defaults, plus `variants` (the list the workflow
    runs), `on_nested_span` (error | keep_outer) and `per_variant.<variant>` (fields to override)."""
    get_variant(variant)
    shared = {k: v for k, v in section.items() if k not in STAGE_KEYS}
    own = dict((section.get("per_variant") or {}).get(variant) or {})
    on_nested = own.pop("on_nested_span", section.get("on_nested_span", "error"))
    own.pop("max_eval_sentences", None)
    cfg = NerConfig.from_dict({**shared, **own, "seed": seed})
    return cfg, on_nested


def eval_cap(section: dict, variant: str) -> int | None:
    """`max_eval_sentences` for one variant (first N of the evaluation split; null = all). Only the
    smoke profile sets it; the metrics record eval_sentences and eval_sentences_available."""
    own = (section.get("per_variant") or {}).get(variant) or {}
    cap = own.get("max_eval_sentences", section.get("max_eval_sentences"))
    if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or cap <= 0):
        raise ValueError(f"params ner.max_eval_sentences must be a positive integer or null, got {cap!r}")
    return cap

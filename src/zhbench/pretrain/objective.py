"""What every pre-training objective provides, and the parts they share.

An `Objective` (one subclass per backbone family, in the family's module) does five things:

- `examples(documents)`: corpus documents -> examples (consecutive sentences that fit a sequence);
- `collator(seed, pool)`: a deterministic examples -> batch function with its own generator;
- `build_model()`: the family's pre-training model; `model(**batch)` returns an output with `.loss`;
- `evaluate(model, batches)`: held-out metrics, `loss_eval` plus the family's accuracies;
- `export(model, dir)`: the backbone in hub layout (config.json, model.safetensors, tokenizer
  files), loadable with `FAMILIES[family].model_class.from_pretrained(dir)`.

Sequences are framed as for fine-tuning: [CLS] A [SEP] (B [SEP]), segment ids 0 / 1, padded on the
right to the longest row of the batch.
"""
from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from typing import Any, ClassVar, Iterable, Sequence

import numpy as np
import torch
from tokenizers import Tokenizer
from torch import nn
from transformers import PretrainedConfig, PreTrainedTokenizerFast

from zhbench.io import atomic_dir, write_json
from zhbench.models.backbones import MINI_POSITIONS, build_config, family_of
from zhbench.pretrain.corpus import Example, Sentence, encode_documents, pack
from zhbench.pretrain.masking import IGNORE, Corruption
from zhbench.text.vocab import CLS, MASK, PAD, SEP, SPECIAL_TOKENS, UNK

Batch = dict[str, torch.Tensor]
EXPORT_INFO_FILE = "pretrain.json"


@dataclass(frozen=True)
class Row:
    """One framed sequence before corruption."""

    ids: np.ndarray
    segments: np.ndarray
    words: np.ndarray | None  # word numbers, -1 at [CLS]/[SEP]
    pos: np.ndarray | None  # POS tag ids, IGNORE at [CLS]/[SEP]


def pad(arrays: Sequence[np.ndarray], value: int, length: int) -> torch.Tensor:
    out = np.full((len(arrays), length), value, dtype=np.int64)
    for i, a in enumerate(arrays):
        out[i, :len(a)] = a
    return torch.from_numpy(out)


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> tuple[int, int]:
    """(correct, counted) over the positions whose label is not IGNORE."""
    keep = labels != IGNORE
    return int((logits.argmax(-1)[keep] == labels[keep]).sum()), int(keep.sum())


class Objective:
    family: ClassVar[str]
    metrics: ClassVar[tuple[str, ...]]  # accuracy names, report order; evaluate() adds "loss_eval"
    with_words: ClassVar[bool] = False  # examples carry jieba words and parts of speech
    pair: ClassVar[bool] = False  # rows are [CLS] A [SEP] B [SEP] instead of [CLS] A [SEP]
    min_example_tokens: ClassVar[int] = 1  # shorter examples are dropped (a pair needs 2 tokens)
    pad_multiple: ClassVar[int] = 1  # rows padded to a multiple of this (XLNet splits them in halves)
    model_input_names: ClassVar[tuple[str, ...]] = ("input_ids", "token_type_ids", "attention_mask")
    # backbone weights the objective does not train (MLM-only BERTs have no pooler to train):
    # export writes them freshly initialised and lists them in pretrain.json
    untrained_prefixes: ClassVar[tuple[str, ...]] = ()

    def __init__(self, tokenizer: Tokenizer, max_len: int = 128, mlm_probability: float = 0.15):
        if max_len < 8:
            raise ValueError(f"max_len must be at least 8, got {max_len}")
        if not 0 < mlm_probability < 1:
            raise ValueError(f"mlm_probability must be in (0, 1), got {mlm_probability}")
        self.max_len, self.mlm_probability = max_len, mlm_probability
        self.tokenizer = self.extend_tokenizer(tokenizer)
        vocab = self.tokenizer.get_vocab(with_added_tokens=True)
        missing = [t for t in SPECIAL_TOKENS if t not in vocab]
        if missing:
            raise ValueError(f"the tokenizer lacks {missing}: use the project's WordLevel vocabulary "
                             "(text.vocab.build_wordlevel)")
        if vocab[PAD] != 0:
            raise ValueError(f"{PAD} must have id 0 (the backbones' padding_idx), it has {vocab[PAD]}")
        self.vocab = vocab
        self.vocab_size = len(vocab)
        self.pad_id, self.cls_id, self.sep_id, self.mask_id = (vocab[t] for t in (PAD, CLS, SEP, MASK))
        special = {i for i, tok in self.tokenizer.get_added_tokens_decoder().items() if tok.special}
        self.special_ids = np.array(sorted(special), dtype=np.int64)
        self.regular_ids = np.setdiff1d(np.arange(self.vocab_size), self.special_ids)
        self.corruption = Corruption(self.mask_id, self.regular_ids)

    # ---- tokenizer and config ---------------------------------------------------------------------

    def extend_tokenizer(self, tokenizer: Tokenizer) -> Tokenizer:
        """The family's tokenizer from the shared one (T5 adds its sentinels)."""
        return tokenizer

    @property
    def extra_special_tokens(self) -> list[str]:
        return []

    def fast_tokenizer(self) -> PreTrainedTokenizerFast:
        """The tokenizer as transformers saves and loads it, special-token roles named."""
        return PreTrainedTokenizerFast(
            tokenizer_object=Tokenizer.from_str(self.tokenizer.to_str()), pad_token=PAD, unk_token=UNK,
            cls_token=CLS, sep_token=SEP, mask_token=MASK, additional_special_tokens=self.extra_special_tokens,
            model_input_names=list(self.model_input_names), model_max_length=self.max_len,
        )

    def config(self, overrides: dict[str, Any] | None = None) -> PretrainedConfig:
        """The family's mini config over this vocabulary (models.backbones.build_config), with the
        position table a from-scratch mini backbone gets (MINI_POSITIONS), so that fine-tuning
        from the export starts from the same architecture and reaches the same lengths."""
        return build_config(self.family, "mini", self.vocab_size, max(MINI_POSITIONS, self.max_len), overrides)

    def build_model(self, overrides: dict[str, Any] | None = None) -> nn.Module:
        """The pre-training model, randomly initialised: seed torch first."""
        raise NotImplementedError

    # ---- examples and batches ----------------------------------------------------------------------

    @property
    def content_len(self) -> int:
        """Tokens per row besides [CLS] and the [SEP]s."""
        return self.max_len - (3 if self.pair else 2)

    def examples(self, documents: Sequence[Sequence[str]]) -> list[Example]:
        """Examples of a split: consecutive sentences of a document, as many as fit one row."""
        packed = pack(encode_documents(documents, self.tokenizer, self.content_len, self.with_words), self.content_len)
        kept = (e for e in packed if len(e) >= self.min_example_tokens)
        examples = [Example(i, e.document, e.sentences) for i, e in enumerate(kept)]
        if not examples:
            raise ValueError(f"{self.family}: the documents hold no usable example")
        return examples

    def collator(self, seed: int, pool: Sequence[Example] = ()) -> "Collator":
        """examples -> batch. Each collator owns its generator: the same seed and the same calls give
        the same batches. `pool`: the split's examples, where an objective draws from other examples
        (NSP's random next sentence)."""
        return Collator(self, np.random.default_rng(seed), pool)

    def dataset(self, examples: Sequence[Example], seed: int) -> "CollatedExamples":
        """The examples as a fit loop reads training data: len() and batch(index) -> tensors."""
        return CollatedExamples(examples, self.collator(seed, pool=examples))

    def collate(self, examples: Sequence[Example], rng: Any, pool: Sequence[Example]) -> Batch:
        """One batch, drawing only from `rng` (the collator's generator)."""
        raise NotImplementedError

    def frame(self, first: Sentence, second: Sentence | None = None) -> Row:
        parts = [np.array([self.cls_id]), first.ids, np.array([self.sep_id])]
        segments = [np.zeros(len(first) + 2, dtype=np.int64)]
        if second is not None:
            parts += [second.ids, np.array([self.sep_id])]
            segments.append(np.ones(len(second) + 1, dtype=np.int64))
        words = pos = None
        if first.words is not None:
            # B's words numbered after A's, so no word spans the [SEP]
            shift = int(first.words.max()) + 1 if len(first) else 0
            w = [[-1], first.words, [-1]] + ([second.words + shift, [-1]] if second is not None else [])
            p = [[IGNORE], first.pos, [IGNORE]] + ([second.pos, [IGNORE]] if second is not None else [])
            words, pos = np.concatenate(w).astype(np.int64), np.concatenate(p).astype(np.int64)
        return Row(np.concatenate(parts).astype(np.int64), np.concatenate(segments), words, pos)

    def regular(self, ids: np.ndarray) -> np.ndarray:
        """True where a token may be corrupted: everything but special tokens."""
        return ~np.isin(ids, self.special_ids)

    def length(self, rows: Sequence[np.ndarray]) -> int:
        longest = max(len(r) for r in rows)
        return -(-longest // self.pad_multiple) * self.pad_multiple

    def encoder_inputs(self, rows: Sequence[Row], inputs: Sequence[np.ndarray]) -> Batch:
        """input_ids / token_type_ids / attention_mask of corrupted rows, padded to the longest."""
        n = self.length(inputs)
        return {
            "input_ids": pad(inputs, self.pad_id, n),
            "token_type_ids": pad([r.segments for r in rows], 0, n),
            "attention_mask": pad([np.ones(len(x), dtype=np.int64) for x in inputs], 0, n),
        }

    # ---- evaluation and export ---------------------------------------------------------------------

    def accuracy_counts(self, batch: Batch, output: Any) -> dict[str, tuple[int, int]]:
        """(correct, counted) per name in `metrics` for one batch."""
        raise NotImplementedError

    @torch.no_grad()
    def evaluate(self, model: nn.Module, batches: Iterable[Batch], seed: int = 0) -> dict[str, float]:
        """Held-out metrics: `loss_eval` (mean loss per row) and each of `metrics` (accuracy over
        all counted positions or rows of all batches). Model randomness (ELECTRA's sampled
        replacements) draws from torch seeded with `seed`, not from the training generator."""
        was_training = model.training
        model.eval()
        loss_sum, rows = 0.0, 0
        counts = {name: [0, 0] for name in self.metrics}
        device = next(model.parameters()).device
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(seed)
            for batch in batches:
                batch = {k: v.to(device) for k, v in batch.items()}
                out = model(**batch)
                n = batch["input_ids"].shape[0]
                loss_sum, rows = loss_sum + out.loss.item() * n, rows + n
                for name, (correct, counted) in self.accuracy_counts(batch, out).items():
                    counts[name][0] += correct
                    counts[name][1] += counted
        model.train(was_training)
        if rows == 0:
            raise ValueError(f"{self.family}: evaluate() got no batches")
        return {"loss_eval": loss_sum / rows,
                **{name: (c / t if t else float("nan")) for name, (c, t) in counts.items()}}

    def backbone_state(self, model: nn.Module) -> tuple[PretrainedConfig, dict[str, torch.Tensor]]:
        """(config, trained weights under the backbone class's own parameter names)."""
        raise NotImplementedError

    def export(self, model: nn.Module, out_dir: str | os.PathLike, info: dict[str, Any] | None = None) -> list[str]:
        """Write the backbone as a hub checkpoint (atomically): config.json + model.safetensors of
        FAMILIES[family].model_class, tokenizer.json + tokenizer_config.json, and pretrain.json
        (family, untrained weights, `info`). Returns the untrained weights' names."""
        config, state = self.backbone_state(model)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)  # the untrained weights: the same on every export
            backbone = family_of(self.family).model_class(copy.deepcopy(config))
        result = backbone.load_state_dict(state, strict=False)
        untrained = sorted(result.missing_keys)
        unexpected = sorted(result.unexpected_keys) + [k for k in untrained if not k.startswith(self.untrained_prefixes)]
        if unexpected:
            raise AssertionError(f"{self.family}: the pre-trained weights do not match "
                                 f"{type(backbone).__name__}: {unexpected}")
        with atomic_dir(out_dir) as tmp:
            backbone.save_pretrained(tmp)
            self.fast_tokenizer().save_pretrained(tmp)
            write_json(tmp / EXPORT_INFO_FILE, {"family": self.family, "untrained": untrained, **(info or {})})
        return untrained


@dataclass
class Collator:
    """An objective's examples -> batch function, with the generator it draws from."""

    objective: Objective
    rng: Any  # np.random.Generator, or torch.Generator for XLNet
    pool: Sequence[Example] = ()

    def __call__(self, examples: Sequence[Example]) -> Batch:
        return self.objective.collate(examples, self.rng, self.pool)


class CollatedExamples:
    """Examples behind a collator: batch(index) collates the examples at `index`. Rows are always
    padded to the batch's longest, so `dynamic_padding` changes nothing; `lengths` lets a loop
    bucket examples by length."""

    def __init__(self, examples: Sequence[Example], collate: Collator):
        self.examples, self.collate = examples, collate
        self.lengths = [len(e) for e in examples]

    def __len__(self) -> int:
        return len(self.examples)

    def batch(self, index: Sequence[int], dynamic_padding: bool = True) -> Batch:
        return self.collate([self.examples[int(i)] for i in index])

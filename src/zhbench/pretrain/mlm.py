"""The masked-LM objectives of the BERT-style families, alone or with a sentence-pair task.

Subclasses choose the units they mask (`units`), how whole n-grams are drawn (`ngram_weights`),
what replaces them (`corruption`), the model, and, for pairs, NSP or SOP.
"""
from __future__ import annotations

from typing import Any, ClassVar, Sequence

import numpy as np
import torch

from zhbench.pretrain import pairs
from zhbench.pretrain.corpus import Example, join
from zhbench.pretrain.masking import IGNORE, choose, units_of
from zhbench.pretrain.objective import Batch, Objective, Row, accuracy, pad


class MaskedLMObjective(Objective):
    """Packed rows ([CLS] sentences... [SEP]) with masked-LM labels under "labels"."""

    metrics = ("mlm_eval_acc",)
    ngram_weights: ClassVar[tuple[float, ...]] = (1.0,)  # p(n) for n = 1, 2, ... units masked together
    mlm_logits: ClassVar[str] = "logits"  # the output field holding MLM logits
    untrained_prefixes = ("pooler.",)

    def example_rng(self, example: Example, rng: np.random.Generator) -> np.random.Generator:
        """The generator an example is corrupted with: the collator's, so masks change every epoch."""
        return rng

    def row(self, example: Example, rng: np.random.Generator, pool: Sequence[Example]) -> tuple[Row, dict[str, int]]:
        """The framed row and its row-level labels."""
        return self.frame(join(example.sentences)), {}

    def units(self, row: Row) -> list[np.ndarray]:
        """Tokens, or with `with_words` whole jieba words."""
        regular = self.regular(row.ids)
        groups = row.words if self.with_words else np.arange(len(row.ids))
        return units_of(np.where(regular, groups, -1))

    def collate(self, examples: Sequence[Example], rng: np.random.Generator, pool: Sequence[Example]) -> Batch:
        rows, inputs, labels, row_labels = [], [], [], []
        for example in examples:
            r = self.example_rng(example, rng)
            row, row_label = self.row(example, r, pool)
            spans = choose(self.units(row), r, self.mlm_probability, self.ngram_weights)
            x, y = self.corruption.apply(row.ids, spans, r)
            rows.append(row)
            inputs.append(x)
            labels.append(y)
            row_labels.append(row_label)
        batch = self.encoder_inputs(rows, inputs)
        batch["labels"] = pad(labels, IGNORE, batch["input_ids"].shape[1])
        for key in row_labels[0]:
            batch[key] = torch.tensor([rl[key] for rl in row_labels], dtype=torch.long)
        return self.extend_batch(batch, rows)

    def extend_batch(self, batch: Batch, rows: Sequence[Row]) -> Batch:
        """Anything else the family's model reads (Mengzi's POS labels)."""
        return batch

    def accuracy_counts(self, batch: Batch, output: Any) -> dict[str, tuple[int, int]]:
        return {"mlm_eval_acc": accuracy(getattr(output, self.mlm_logits), batch["labels"])}


class SentencePairObjective(MaskedLMObjective):
    """[CLS] A [SEP] B [SEP] rows: masked LM plus next sentence (NSP) or sentence order (SOP)."""

    pair = True
    min_example_tokens = 2  # A and B non-empty
    mlm_logits = "prediction_logits"
    untrained_prefixes = ()  # the sentence task trains the pooler
    sentence_task: ClassVar[str]  # "nsp" or "sop"
    sentence_label: ClassVar[str]  # the model's keyword for it: next_sentence_label / sentence_order_label
    sentence_logits: ClassVar[str]  # the output field: seq_relationship_logits / sop_logits

    @property
    def metrics(self) -> tuple[str, ...]:  # type: ignore[override]
        return ("mlm_eval_acc", f"{self.sentence_task}_eval_acc")

    def collator(self, seed: int, pool: Sequence[Example] = ()):
        if self.sentence_task == "nsp":
            pairs.check_pool(pool)
        return super().collator(seed, pool)

    def row(self, example: Example, rng: np.random.Generator, pool: Sequence[Example]) -> tuple[Row, dict[str, int]]:
        if self.sentence_task == "nsp":
            a, b, label = pairs.next_sentence_pair(example, pool, rng, self.content_len)
        else:
            a, b, label = pairs.sentence_order_pair(example, rng)
        return self.frame(a, b), {self.sentence_label: label}

    def accuracy_counts(self, batch: Batch, output: Any) -> dict[str, tuple[int, int]]:
        return {**super().accuracy_counts(batch, output),
                f"{self.sentence_task}_eval_acc": accuracy(getattr(output, self.sentence_logits),
                                                           batch[self.sentence_label])}

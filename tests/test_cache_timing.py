"""cached vs uncached: the same run twice, features built then read from the cache; same quality."""
from __future__ import annotations

import random

import pytest
import torch
import torch.nn as nn
from transformers.modeling_outputs import SequenceClassifierOutput

from zhbench.cache_timing import CacheTimingConfig, run_twice
from zhbench.text.vocab import build_vocab, save_tokenizer


class Tiny(nn.Module):
    def __init__(self, vocab_size: int, num_labels: int):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, 8, padding_idx=0)
        self.head = nn.Linear(8, num_labels)

    def forward(self, input_ids, attention_mask, token_type_ids=None, labels=None):
        mask = attention_mask.unsqueeze(-1).float()
        logits = self.head((self.embed(input_ids) * mask).sum(1) / mask.sum(1))
        loss = None if labels is None else nn.functional.cross_entropy(logits, labels)
        return SequenceClassifierOutput(loss=loss, logits=logits)


@pytest.fixture
def split_files(tmp_path):
    rng = random.Random(0)
    chars = ["体育球赛", "财经股市"]
    for split in ("train", "dev"):
        rows = [f"{' '.join(rng.choice(chars[i % 2]) for _ in range(4))}\t{i % 2}\n" for i in range(60)]
        (tmp_path / f"{split}.tsv").write_text("".join(rows), encoding="utf-8")
    tok, _ = build_vocab(tmp_path / "train.tsv", "char")
    save_tokenizer(tok, tmp_path / "tokenizer.json")
    return tmp_path, tok.get_vocab_size()


def test_first_run_builds_features_second_reads_them_with_identical_quality(split_files):
    d, vocab = split_files
    cfg = CacheTimingConfig(samples=40, max_len=8, batch_size=8, lr=0.05, epochs=1, threads=1)

    def build():
        torch.manual_seed(0)
        return Tiny(vocab, 2)

    quality, timing = run_twice(build, d / "tokenizer.json", d / "train.tsv", d / "dev.tsv", ["a", "b"], cfg,
                                "char", seed=3)
    assert quality["train_samples"] == quality["eval_samples"] == 40
    assert quality["acc_and_f1"] == pytest.approx((quality["acc"] + quality["f1"]) / 2)
    assert timing["first"]["cache_hit"] is False and timing["cached"]["cache_hit"] is True
    assert timing["first"]["training_seconds"] > 0 and timing["cached"]["evaluation_seconds"] > 0

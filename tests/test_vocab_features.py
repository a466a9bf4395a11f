"""Vocabulary (tokenizer.json) and the feature cache."""
from __future__ import annotations

import filecmp

import pytest
import torch

from zhbench.encoders import VocabEncoder
from zhbench.features import BucketBatches, ShuffledBatches, cache_key, load_features
from zhbench.io import BadInputError
from zhbench.text.vocab import CLS, PAD, SEP, SPECIAL_TOKENS, build_vocab, load_fast_tokenizer, save_tokenizer

TRAIN = ["体 育 比 赛", "财 经 股 市 大 涨", "游 戏 玩 家", "体 育 明 星 NBA", "股 市"]


@pytest.fixture
def split_dir(tmp_path):
    d = tmp_path / "char"
    d.mkdir()
    (d / "train.tsv").write_text("".join(f"{t}\t{i % 3}\n" for i, t in enumerate(TRAIN)), encoding="utf-8")
    (d / "dev.tsv").write_text("体 育 新 闻\t0\n股 市 消 息 很 长 的 一 个 标 题 啊\t1\n", encoding="utf-8")
    return d


@pytest.fixture
def tokenizer_file(split_dir, tmp_path):
    tok, _ = build_vocab(split_dir / "train.tsv", "char")
    path = tmp_path / "vocab" / "tokenizer.json"
    save_tokenizer(tok, path)
    return path


def test_vocab_ids_order_and_stats(split_dir):
    tok, stats = build_vocab(split_dir / "train.tsv", "char", min_frequency=2)
    vocab = tok.get_vocab()
    assert [vocab[t] for t in SPECIAL_TOKENS] == [0, 1, 2, 3, 4]
    # count desc, then token asc: 育/体/股/市 appear twice; nothing else survives min_frequency=2
    kept = sorted((i, t) for t, i in vocab.items() if i >= 5)
    assert [t for _, t in kept] == sorted(["体", "育", "股", "市"])
    assert stats.vocab_size == 9 and stats.distinct_tokens > 9 and 0 < stats.train_coverage < 1
    tok_small, _ = build_vocab(split_dir / "train.tsv", "char", max_size=7)
    assert tok_small.get_vocab_size() == 7


def test_vocab_file_is_deterministic(split_dir, tmp_path):
    for name in ("a.json", "b.json"):
        save_tokenizer(build_vocab(split_dir / "train.tsv", "char")[0], tmp_path / name)
    assert filecmp.cmp(tmp_path / "a.json", tmp_path / "b.json", shallow=False)


def test_vocab_roundtrip_with_transformers(tokenizer_file):
    fast = load_fast_tokenizer(tokenizer_file)
    enc = fast("体 育 未知", padding="max_length", max_length=8, truncation=True)
    tokens = fast.convert_ids_to_tokens(enc["input_ids"])
    assert tokens == [CLS, "体", "育", "[UNK]", SEP, PAD, PAD, PAD]
    assert enc["attention_mask"] == [1] * 5 + [0] * 3
    pair = fast("体 育", "股 市")
    assert fast.convert_ids_to_tokens(pair["input_ids"]) == [CLS, "体", "育", SEP, "股", "市", SEP]
    assert pair["token_type_ids"] == [0, 0, 0, 0, 1, 1, 1]
    assert fast.pad_token_id == 0
    # a directory holding tokenizer.json loads too (the checkpoint layout)
    assert load_fast_tokenizer(tokenizer_file.parent).get_vocab() == fast.get_vocab()


def test_bad_line_names_file_and_line(tmp_path):
    bad = tmp_path / "train.tsv"
    bad.write_text("体 育\t0\n没有标签\n", encoding="utf-8")
    with pytest.raises(BadInputError, match=r"train.tsv:2"):
        build_vocab(bad, "char")


def test_features_cache_hit_identical(split_dir, tokenizer_file, tmp_path):
    cache = tmp_path / "cache"
    first, info1 = load_features(split_dir / "dev.tsv", tokenizer_file, 8, "char", 3, cache)
    second, info2 = load_features(split_dir / "dev.tsv", tokenizer_file, 8, "char", 3, cache)
    assert not info1.cache_hit and info2.cache_hit and info1.cache_file == info2.cache_file
    for name, t in first.tensors().items():
        assert torch.equal(t, getattr(second, name)), name
    assert first.input_ids.shape == (2, 8) and first.input_ids.dtype == torch.long
    # the long title is truncated with [SEP] kept last; the short one is padded with [PAD]=0
    assert first.lengths.tolist() == [6, 8]
    assert first.input_ids[1, -1].item() == 3 and first.input_ids[0, 6:].tolist() == [0, 0]
    uncached, info3 = load_features(split_dir / "dev.tsv", tokenizer_file, 8, "char", 3)
    assert not info3.cache_hit and torch.equal(uncached.input_ids, first.input_ids)


def test_cache_key_changes_with_inputs(split_dir, tokenizer_file, tmp_path):
    dev = split_dir / "dev.tsv"
    enc = VocabEncoder(tokenizer_file, "char")
    base = cache_key(enc, dev, 8, "char")
    assert base == cache_key(enc, dev, 8, "char")
    assert base != cache_key(enc, dev, 16, "char")
    assert base != cache_key(enc, dev, 8, "word")
    other = tmp_path / "dev2.tsv"
    other.write_text(dev.read_text(encoding="utf-8") + "游 戏\t2\n", encoding="utf-8")
    assert base != cache_key(enc, other, 8, "char")
    cache = tmp_path / "cache"
    _, a = load_features(dev, tokenizer_file, 8, "char", 3, cache)
    _, b = load_features(dev, tokenizer_file, 16, "char", 3, cache)
    assert a.cache_file != b.cache_file and not b.cache_hit


def test_dynamic_padding_batches(split_dir, tokenizer_file):
    feats, _ = load_features(split_dir / "dev.tsv", tokenizer_file, 16, "char", 3)
    batch = feats.batch([0], dynamic_padding=True)
    assert batch["input_ids"].shape == (1, 6)
    assert feats.batch([0, 1], dynamic_padding=True)["input_ids"].shape == (2, 14)  # 12 chars + [CLS] + [SEP]
    assert feats.batch([0], dynamic_padding=False)["input_ids"].shape == (1, 16)


def test_bucket_sampler_is_seeded_and_covers_all():
    lengths = torch.randint(3, 30, (1000,), generator=torch.Generator().manual_seed(0))
    runs = [list(BucketBatches(lengths, 16, torch.Generator().manual_seed(7), chunk_batches=8)) for _ in range(2)]
    assert runs[0] == runs[1]
    assert sorted(i for b in runs[0] for i in b) == list(range(1000))
    fixed = list(ShuffledBatches(1000, 16, torch.Generator().manual_seed(7)))

    def padded(batches, dynamic):  # positions a batch holds after trimming (dynamic) or at pad 32
        return sum((int(lengths[b].max()) if dynamic else 32) * len(b) for b in batches)
    assert padded(runs[0], True) < 0.75 * padded(fixed, False)

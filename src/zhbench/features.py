"""Turn a `tokens<TAB>label_id` split into model tensors, with an on-disk feature cache.

Encoding 180k titles through a tokenizer takes tens of seconds; the cache makes the second load a
single safetensors read. The cache key is a hash of everything the tensors depend on (tokenizer
bytes, split bytes, max_len, granularity, layout version), so a stale cache can never be read: any
change gives a new file name.

Tensors are always stored padded to max_len together with each row's true length. Fixed padding
uses them as stored; dynamic padding trims each batch to its longest row at batching time. That
keeps one cache file per (split, tokenizer, max_len) instead of one per padding mode.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import torch
from safetensors.torch import load_file, save_file

from zhbench.io import atomic_path

log = logging.getLogger(__name__)

# Bump when the stored layout changes, so old cache files are ignored instead of misread.
CACHE_LAYOUT = "zhbench-features-v1"
PAD_ID = 0  # [PAD] is id 0 in every zhbench vocabulary (text/vocab.py)


@dataclass
class Features:
    """One encoded split. Row i of every tensor is line i of the TSV."""

    input_ids: torch.Tensor       # int64 [N, max_len], [CLS] ... [SEP] then [PAD]=0
    attention_mask: torch.Tensor  # int64 [N, max_len], 1 on real tokens
    labels: torch.Tensor          # int64 [N]
    lengths: torch.Tensor         # int64 [N], real tokens incl. [CLS]/[SEP]

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def batch(self, index: Sequence[int] | torch.Tensor, dynamic_padding: bool = False) -> dict[str, torch.Tensor]:
        """Gather rows; with dynamic padding, cut the padding columns no row in the batch uses."""
        index = torch.as_tensor(index, dtype=torch.long)
        ids, mask = self.input_ids[index], self.attention_mask[index]
        if dynamic_padding:
            width = int(self.lengths[index].max())
            ids, mask = ids[:, :width], mask[:, :width]
        return {"input_ids": ids, "attention_mask": mask, "labels": self.labels[index]}

    def subset(self, index: Sequence[int] | torch.Tensor) -> "Features":
        index = torch.as_tensor(index, dtype=torch.long)
        return Features(self.input_ids[index], self.attention_mask[index], self.labels[index], self.lengths[index])

    def tensors(self) -> dict[str, torch.Tensor]:
        return {"input_ids": self.input_ids, "attention_mask": self.attention_mask,
                "labels": self.labels, "lengths": self.lengths}


@dataclass(frozen=True)
class LoadInfo:
    seconds: float     # wall time of load_features (encode or cache read)
    cache_hit: bool
    cache_file: str | None


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def cache_key(tokenizer_file: str | os.PathLike, split_file: str | os.PathLike, max_len: int,
              granularity: str) -> str:
    """Hex digest naming the cache file; changes whenever any input of the encoding changes."""
    parts = {
        "layout": CACHE_LAYOUT,
        "tokenizer_sha256": sha256_file(tokenizer_file),
        "split_sha256": sha256_file(split_file),
        "max_len": int(max_len),
        "granularity": granularity,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def encode_split(tokenizer_file: str | os.PathLike, split_file: str | os.PathLike, max_len: int,
                 num_labels: int) -> Features:
    """Encode with truncation to max_len ([CLS]/[SEP] included) and padding to max_len."""
    from zhbench.evaluate import read_split  # the one validator of processed splits
    from zhbench.text.vocab import load_tokenizer

    texts, labels = read_split(split_file, num_labels)
    tokenizer = load_tokenizer(tokenizer_file)
    # Truncation inside the tokenizer keeps [SEP] at the end of a cut title, as BERT expects.
    tokenizer.enable_truncation(max_length=max_len)
    tokenizer.enable_padding(pad_id=PAD_ID, pad_token="[PAD]", length=max_len)
    encodings = tokenizer.encode_batch(texts)
    input_ids = torch.tensor([e.ids for e in encodings], dtype=torch.long)
    attention_mask = torch.tensor([e.attention_mask for e in encodings], dtype=torch.long)
    return Features(input_ids=input_ids, attention_mask=attention_mask,
                    labels=torch.as_tensor(labels, dtype=torch.long), lengths=attention_mask.sum(dim=1))


def load_features(split_file: str | os.PathLike, tokenizer_file: str | os.PathLike, max_len: int,
                  granularity: str, num_labels: int,
                  cache_dir: str | os.PathLike | None = None) -> tuple[Features, LoadInfo]:
    """Features of one split, read from `cache_dir` when an entry for exactly these inputs exists.

    Without `cache_dir` it always encodes (the uncached arm of the cache benchmark).
    """
    start = time.perf_counter()
    if cache_dir is None:
        feats = encode_split(tokenizer_file, split_file, max_len, num_labels)
        return feats, LoadInfo(time.perf_counter() - start, False, None)

    key = cache_key(tokenizer_file, split_file, max_len, granularity)
    cache_file = Path(cache_dir) / f"{Path(split_file).stem}-{granularity}-{max_len}-{key[:16]}.safetensors"
    if cache_file.exists():
        stored = load_file(str(cache_file))
        feats = Features(**stored)
        log.info("features: cache hit %s (%d rows)", cache_file, len(feats))
        return feats, LoadInfo(time.perf_counter() - start, True, str(cache_file))

    feats = encode_split(tokenizer_file, split_file, max_len, num_labels)
    with atomic_path(cache_file) as tmp:
        save_file({k: v.contiguous() for k, v in feats.tensors().items()}, str(tmp),
                  metadata={"key": key, "layout": CACHE_LAYOUT, "split": Path(split_file).name,
                            "granularity": granularity, "max_len": str(max_len)})
    log.info("features: encoded %s -> %s (%d rows)", split_file, cache_file, len(feats))
    return feats, LoadInfo(time.perf_counter() - start, False, str(cache_file))


# --- batching -------------------------------------------------------------------------------------

def sequential_batches(n: int, batch_size: int) -> Iterator[list[int]]:
    """Evaluation order: the file order, so predictions line up with the TSV."""
    for start in range(0, n, batch_size):
        yield list(range(start, min(start + batch_size, n)))


class ShuffledBatches:
    """Shuffle all rows each epoch from a seeded generator, then cut into batches (fixed padding)."""

    def __init__(self, n: int, batch_size: int, generator: torch.Generator):
        self.n, self.batch_size, self.generator = n, batch_size, generator

    def __len__(self) -> int:
        return (self.n + self.batch_size - 1) // self.batch_size

    def __iter__(self) -> Iterator[list[int]]:
        order = torch.randperm(self.n, generator=self.generator).tolist()
        for start in range(0, self.n, self.batch_size):
            yield order[start:start + self.batch_size]


class BucketBatches:
    """Length bucketing for dynamic padding: sort within chunks, shuffle the batches.

    A global sort would make every batch uniform in length but also uniform in content order; sorting
    only inside chunks of `chunk_batches` batches keeps the epoch random while most batches hold rows
    of similar length, so little padding is left after trimming each batch to its longest row.
    """

    def __init__(self, lengths: torch.Tensor, batch_size: int, generator: torch.Generator,
                 chunk_batches: int = 50):
        self.lengths, self.batch_size, self.generator = lengths, batch_size, generator
        self.chunk = batch_size * chunk_batches

    def __len__(self) -> int:
        return (len(self.lengths) + self.batch_size - 1) // self.batch_size

    def __iter__(self) -> Iterator[list[int]]:
        order = torch.randperm(len(self.lengths), generator=self.generator)
        batches: list[list[int]] = []
        for start in range(0, len(order), self.chunk):
            chunk = order[start:start + self.chunk]
            # stable sort: ties keep their shuffled order, so the result depends only on the seed
            chunk = chunk[torch.sort(self.lengths[chunk], stable=True).indices]
            batches.extend(chunk[i:i + self.batch_size].tolist() for i in range(0, len(chunk), self.batch_size))
        for b in torch.randperm(len(batches), generator=self.generator).tolist():
            yield batches[b]


def padding_stats(features: Features, batches: Sequence[Sequence[int]], dynamic_padding: bool) -> dict:
    """Share of padded positions over an epoch of batches (for the padding benchmark)."""
    real = padded = 0
    for idx in batches:
        lengths = features.lengths[torch.as_tensor(idx)]
        width = int(lengths.max()) if dynamic_padding else features.input_ids.shape[1]
        real += int(lengths.sum())
        padded += width * len(idx)
    return {"real_tokens": real, "total_positions": padded, "pad_fraction": 1 - real / padded}

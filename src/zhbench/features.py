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

from zhbench.io import atomic_path, sha256_file

log = logging.getLogger(__name__)

# Bump when the stored layout changes, so old cache files are ignored instead of misread.
CACHE_LAYOUT = "zhbench-features-v2"
PAD_ID = 0  # [PAD] is id 0 in every zhbench vocabulary (text/vocab.py)


@dataclass
class Features:
    """One encoded split. Row i of every tensor is line i of the TSV."""

    input_ids: torch.Tensor       # int64 [N, max_len], special tokens included, padded with the encoder's pad id
    attention_mask: torch.Tensor  # int64 [N, max_len], 1 on real tokens
    labels: torch.Tensor          # int64 [N]
    lengths: torch.Tensor         # int64 [N], real tokens incl. special tokens
    token_type_ids: torch.Tensor | None = None  # int64 [N, max_len] where the tokenizer gives segment ids
    padding_side: str = "right"   # XLNet's tokenizer pads on the left

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def batch(self, index: Sequence[int] | torch.Tensor, dynamic_padding: bool = False) -> dict[str, torch.Tensor]:
        """Gather rows; with dynamic padding, cut the padding columns no row in the batch uses."""
        index = torch.as_tensor(index, dtype=torch.long)
        columns = {"input_ids": self.input_ids, "attention_mask": self.attention_mask}
        if self.token_type_ids is not None:
            columns["token_type_ids"] = self.token_type_ids
        out = {k: v[index] for k, v in columns.items()}
        if dynamic_padding:
            width = int(self.lengths[index].max())
            cut = slice(-width, None) if self.padding_side == "left" else slice(None, width)
            out = {k: v[:, cut] for k, v in out.items()}
        return {**out, "labels": self.labels[index]}

    def subset(self, index: Sequence[int] | torch.Tensor) -> "Features":
        index = torch.as_tensor(index, dtype=torch.long)
        types = None if self.token_type_ids is None else self.token_type_ids[index]
        return Features(self.input_ids[index], self.attention_mask[index], self.labels[index], self.lengths[index],
                        types, self.padding_side)

    def tensors(self) -> dict[str, torch.Tensor]:
        out = {"input_ids": self.input_ids, "attention_mask": self.attention_mask,
               "labels": self.labels, "lengths": self.lengths}
        if self.token_type_ids is not None:
            out["token_type_ids"] = self.token_type_ids
        return out


@dataclass(frozen=True)
class LoadInfo:
    seconds: float     # wall time of load_features (encode or cache read)
    cache_hit: bool
    cache_file: str | None


def _encoder(tokenizer, granularity: str):
    """An encoder object (zhbench.encoders), or a tokenizer.json path for the project vocabulary."""
    if hasattr(tokenizer, "encode") and hasattr(tokenizer, "fingerprint"):
        return tokenizer
    from zhbench.encoders import VocabEncoder

    return VocabEncoder(tokenizer, granularity)


def cache_key(encoder, split_file: str | os.PathLike, max_len: int, granularity: str) -> str:
    """Hex digest naming the cache file; changes whenever any input of the encoding changes."""
    parts = {
        "layout": CACHE_LAYOUT,
        "encoder": encoder.kind,
        "tokenizer_sha256": encoder.fingerprint,
        "split_sha256": sha256_file(split_file),
        "max_len": int(max_len),
        "granularity": granularity,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def encode_split(tokenizer, split_file: str | os.PathLike, max_len: int, num_labels: int,
                 granularity: str = "char") -> Features:
    """Encode a processed split with truncation and padding to max_len (special tokens included).

    `tokenizer`: an encoder (zhbench.encoders) or the project vocabulary's tokenizer.json."""
    from zhbench.evaluate import read_split  # the one validator of processed splits

    encoder = _encoder(tokenizer, granularity)
    texts, labels = read_split(split_file, num_labels)
    enc = encoder.encode(texts, max_len)
    mask = enc["attention_mask"]
    return Features(input_ids=enc["input_ids"], attention_mask=mask,
                    labels=torch.as_tensor(labels, dtype=torch.long), lengths=mask.sum(dim=1),
                    token_type_ids=enc.get("token_type_ids"), padding_side=encoder.padding_side)


def load_features(split_file: str | os.PathLike, tokenizer, max_len: int, granularity: str, num_labels: int,
                  cache_dir: str | os.PathLike | None = None) -> tuple[Features, LoadInfo]:
    """Features of one split, read from `cache_dir` when an entry for exactly these inputs exists.

    `tokenizer`: an encoder (zhbench.encoders) or the project vocabulary's tokenizer.json. Without
    `cache_dir` it always encodes (the uncached arm of the cache benchmark)."""
    start = time.perf_counter()
    encoder = _encoder(tokenizer, granularity)
    if cache_dir is None:
        feats = encode_split(encoder, split_file, max_len, num_labels, granularity)
        return feats, LoadInfo(time.perf_counter() - start, False, None)

    key = cache_key(encoder, split_file, max_len, granularity)
    cache_file = Path(cache_dir) / f"{Path(split_file).stem}-{granularity}-{max_len}-{key[:16]}.safetensors"
    if cache_file.exists():
        stored = load_file(str(cache_file))
        feats = Features(**stored, padding_side=encoder.padding_side)
        log.info("features: cache hit %s (%d rows)", cache_file, len(feats))
        return feats, LoadInfo(time.perf_counter() - start, True, str(cache_file))

    feats = encode_split(encoder, split_file, max_len, num_labels, granularity)
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

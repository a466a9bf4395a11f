"""Similar characters for MacBERT's MLM-as-correction, from an embedding that ships with jieba.

MacBERT replaces a chosen word by a *similar* word (found with the Synonyms toolkit's word2vec)
instead of [MASK], so pre-training inputs look like real text with mistakes. Synonyms needs its
own download; offline, the nearest usable embedding is the one jieba bundles for its paddle mode:
`jieba/lac_small/model_baseline/word_emb`, Baidu LAC's 20,941 x 128 character embedding, trained
for segmentation, part of speech and named entities (a Paddle tensor file: a 29-byte header, then
little-endian float32), its vocabulary in `lac_small/word.dic` ("id<TAB>char" lines).

Trained for tagging, its neighbours are characters that play the same role: 北 -> 南 西 东,
涨 -> 跌 降, 猫 -> 狗 熊 鸡, 说 -> 看 讲 想, 一 -> 三 1 四 两. Our vocabulary is char-level, so
MacBERT's "similar word" becomes "each character replaced by one of its k nearest characters by
cosine", over the characters of our vocabulary that LAC knows (restricting the neighbours to our
vocabulary also drops LAC's rare characters, whose embeddings are barely trained and crowd the
neighbour lists). A character LAC does not know has no similar characters; masking then falls back
to a random token, as MacBERT does when Synonyms has no similar word.

The alternative, co-occurrence vectors from our own corpus, would make the replacements depend on
the corpus and its size; LAC's are fixed by the jieba version the project pins.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

LAC_HEADER_BYTES = 29
LAC_DIM = 128


def lac_dir() -> Path:
    import jieba

    return Path(jieba.__file__).parent / "lac_small"


@lru_cache(maxsize=1)
def lac_embedding() -> tuple[dict[str, int], np.ndarray]:
    """(char -> row, (rows, 128) float32 embedding) of jieba's LAC model."""
    root = lac_dir()
    vocab: dict[str, int] = {}
    with open(root / "word.dic", encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            parts = line.rstrip("\n").split("\t")
            if len(parts) != 2 or not parts[0].isdigit():
                raise ValueError(f"{root / 'word.dic'}:{lineno}: expected 'id<TAB>char', found {line!r}")
            vocab[parts[1]] = int(parts[0])
    raw = (root / "model_baseline" / "word_emb").read_bytes()
    if (len(raw) - LAC_HEADER_BYTES) % (4 * LAC_DIM):
        raise ValueError(f"{root / 'model_baseline/word_emb'}: {len(raw)} bytes is not a {LAC_HEADER_BYTES}-byte "
                         f"header plus float32 rows of {LAC_DIM}")
    emb = np.frombuffer(raw, dtype="<f4", offset=LAC_HEADER_BYTES).reshape(-1, LAC_DIM)
    if max(vocab.values()) >= len(emb):
        raise ValueError(f"{root}: word.dic has ids up to {max(vocab.values())}, the embedding only {len(emb)} rows")
    return vocab, emb


def similar_tokens(vocab: dict[str, int], candidates: np.ndarray, k: int = 5) -> np.ndarray:
    """(len(vocab), k) array: row i holds the ids of token i's k most similar tokens by cosine of
    LAC embeddings, most similar first; -1 where a token has none (not in LAC, or not a candidate)
    and in the last columns when fewer than k + 1 tokens qualify.

    vocab: token -> id (a tokenizer's get_vocab()); candidates: the ids that may replace and be
    replaced (the regular tokens: never a special token).
    """
    lac, emb = lac_embedding()
    allowed = set(candidates.tolist())
    ids = np.array([i for tok, i in sorted(vocab.items(), key=lambda kv: kv[1]) if i in allowed and tok in lac],
                   dtype=np.int64)
    table = np.full((max(vocab.values()) + 1, k), -1, dtype=np.int64)
    if len(ids) < 2:
        return table
    id_to_tok = {i: t for t, i in vocab.items()}
    vectors = torch.from_numpy(np.stack([emb[lac[id_to_tok[int(i)]]] for i in ids]).astype(np.float32))
    vectors = torch.nn.functional.normalize(vectors, dim=1)
    k_eff = min(k, len(ids) - 1)
    for start in range(0, len(ids), 1024):  # (1024, n) similarities at a time
        sims = vectors[start:start + 1024] @ vectors.T
        sims[torch.arange(sims.shape[0]), torch.arange(start, start + sims.shape[0])] = -float("inf")  # not itself
        nearest = sims.topk(k_eff, dim=1).indices.numpy()
        table[ids[start:start + 1024], :k_eff] = ids[nearest]
    return table

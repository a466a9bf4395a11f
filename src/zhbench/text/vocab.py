"""Word-level vocabularies for the scratch backbones, as HF `tokenizers` tokenizer.json files.

The preprocess stage has already split every title into tokens (char or jieba word), so the
tokenizer here only has to split on whitespace and look tokens up: a `WordLevel` model behind a
`WhitespaceSplit` pre-tokenizer. Saving it as tokenizer.json means a checkpoint directory holds its
own tokenizer and `transformers.PreTrainedTokenizerFast(tokenizer_file=...)` can load it.
"""
from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from tokenizers import Tokenizer
from tokenizers.models import WordLevel
from tokenizers.pre_tokenizers import WhitespaceSplit
from tokenizers.processors import TemplateProcessing

from zhbench.io import BadInputError, atomic_path

PAD, UNK, CLS, SEP, MASK = "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"
# Order fixes the ids: [PAD]=0 matches the backbones' padding_idx=0 and the zero-padding in features.
SPECIAL_TOKENS = (PAD, UNK, CLS, SEP, MASK)


@dataclass(frozen=True)
class VocabStats:
    """What the training split looked like; written next to tokenizer.json for the report."""

    granularity: str
    train_tokens: int       # running tokens in the training split
    distinct_tokens: int    # distinct tokens before min_frequency / max_size
    vocab_size: int         # final size, special tokens included
    min_frequency: int
    max_size: int | None
    train_coverage: float   # share of training tokens that are in the vocabulary (not [UNK])

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def count_tsv_tokens(path: str | os.PathLike) -> Counter:
    """Count the space-separated tokens of a `tokens<TAB>label_id` split, checking every line."""
    counts: Counter = Counter()
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            line = line.rstrip("\n")
            parts = line.split("\t")
            if len(parts) != 2:
                raise BadInputError(path, lineno, f"expected 'tokens<TAB>label_id', found {len(parts)} field(s): {line[:80]!r}")
            counts.update(parts[0].split())
    if not counts:
        raise BadInputError(path, None, "expected at least one token, found an empty split")
    return counts


def build_wordlevel(counts: Counter, min_frequency: int = 1, max_size: int | None = None) -> Tokenizer:
    """A WordLevel tokenizer over the most frequent tokens.

    The order is (count descending, token ascending) so ids never depend on hash or file order;
    `max_size` counts the special tokens too, so it is the embedding-table size.
    """
    kept = sorted(((t, c) for t, c in counts.items() if c >= min_frequency and t not in SPECIAL_TOKENS),
                  key=lambda tc: (-tc[1], tc[0]))
    if max_size is not None:
        if max_size <= len(SPECIAL_TOKENS):
            raise ValueError(f"max_size must exceed the {len(SPECIAL_TOKENS)} special tokens, got {max_size}")
        kept = kept[: max_size - len(SPECIAL_TOKENS)]
    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS)}
    for tok, _ in kept:
        vocab[tok] = len(vocab)

    tokenizer = Tokenizer(WordLevel(vocab, unk_token=UNK))
    # Registered as special (ids unchanged, they are already in the vocab) so that decoding can
    # skip them and a literal "[CLS]" in a title is matched whole, never split.
    tokenizer.add_special_tokens(list(SPECIAL_TOKENS))
    tokenizer.pre_tokenizer = WhitespaceSplit()
    # BERT-style framing for every backbone: the classifier pools [CLS] (or the first token), and
    # sentence pairs (LCQMC) get segment ids 0 / 1 from the pair template.
    tokenizer.post_processor = TemplateProcessing(
        single=f"{CLS} $A {SEP}",
        pair=f"{CLS} $A {SEP} $B:1 {SEP}:1",
        special_tokens=[(CLS, vocab[CLS]), (SEP, vocab[SEP])],
    )
    return tokenizer


def build_vocab(train_tsv: str | os.PathLike, granularity: str, min_frequency: int = 1,
                max_size: int | None = None) -> tuple[Tokenizer, VocabStats]:
    counts = count_tsv_tokens(train_tsv)
    tokenizer = build_wordlevel(counts, min_frequency, max_size)
    vocab = tokenizer.get_vocab()
    total = sum(counts.values())
    covered = sum(c for t, c in counts.items() if t in vocab)
    stats = VocabStats(granularity=granularity, train_tokens=total, distinct_tokens=len(counts),
                       vocab_size=len(vocab), min_frequency=min_frequency, max_size=max_size,
                       train_coverage=covered / total)
    return tokenizer, stats


def save_tokenizer(tokenizer: Tokenizer, path: str | os.PathLike) -> None:
    """Write tokenizer.json atomically; `tokenizers` writes the vocab ordered by id, so the bytes are stable."""
    with atomic_path(path) as tmp:
        tokenizer.save(str(tmp), pretty=True)


def load_tokenizer(path: str | os.PathLike) -> Tokenizer:
    return Tokenizer.from_file(str(path))


def load_fast_tokenizer(path: str | os.PathLike):
    """The same file as a `transformers` tokenizer (what a served checkpoint uses).

    `path` may be tokenizer.json or a directory holding it. The special-token roles are not stored
    in tokenizer.json, so they are named here.
    """
    from transformers import PreTrainedTokenizerFast

    path = Path(path)
    if path.is_dir():
        path = path / "tokenizer.json"
    return PreTrainedTokenizerFast(tokenizer_file=str(path), pad_token=PAD, unk_token=UNK,
                                   cls_token=CLS, sep_token=SEP, mask_token=MASK,
                                   model_input_names=["input_ids", "token_type_ids", "attention_mask"])


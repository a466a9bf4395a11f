"""Encode raw text with a checkpoint's own tokenizer (checkpoint_tokenizer.load_checkpoint_tokenizer).

Every function returns int64 torch tensors named as the model's forward expects them:
input_ids, attention_mask and, where the family has segment ids, token_type_ids. Padding, its side,
the pad id, the special tokens and truncation are the tokenizer's own, so XLNet comes out
left-padded with `<sep> <cls>` at the end and BERT right-padded inside `[CLS] .. [SEP]`.

Texts go in raw: sentencepiece models (XLNet, T5) split raw text themselves and would read
space-joined characters as separate words. For word granularity pass the pre-split (jieba) words:
each word is tokenised on its own, as WoBERT-style checkpoints expect.

max_length counts the special tokens. dynamic_padding=False pads every row to max_length; True
pads to the batch's longest row.
"""
from __future__ import annotations

import functools
from typing import Callable, Sequence

import torch
from transformers.tokenization_utils_tokenizers import TokenizersBackend


def _padding(dynamic_padding: bool) -> str:
    return "longest" if dynamic_padding else "max_length"


def _tensors(encoding) -> dict[str, torch.Tensor]:
    return {name: encoding[name] for name in encoding.keys()}


def _check_batch(texts: Sequence, what: str) -> None:
    if isinstance(texts, str):
        raise TypeError(f"expected a sequence of {what}, got one string: {texts[:40]!r}")
    if len(texts) == 0:
        raise ValueError(f"no {what} to encode")


def encode_texts(tokenizer: TokenizersBackend, texts: Sequence[str], max_length: int,
                 dynamic_padding: bool = False) -> dict[str, torch.Tensor]:
    """Single raw texts; a text too long loses its tail, never its special tokens."""
    _check_batch(texts, "texts")
    return _tensors(tokenizer(list(texts), truncation=True, max_length=max_length,
                              padding=_padding(dynamic_padding), return_tensors="pt"))


def encode_words(tokenizer: TokenizersBackend, words: Sequence[Sequence[str]], max_length: int,
                 dynamic_padding: bool = False) -> dict[str, torch.Tensor]:
    """Single texts given as pre-split words (word granularity); truncation as encode_texts."""
    _check_batch(words, "word lists")
    return _tensors(tokenizer([list(w) for w in words], is_split_into_words=True, truncation=True,
                              max_length=max_length, padding=_padding(dynamic_padding), return_tensors="pt"))


def encode_pairs(tokenizer: TokenizersBackend, first: Sequence[str], second: Sequence[str], max_length: int,
                 dynamic_padding: bool = False) -> dict[str, torch.Tensor]:
    """Sentence pairs in the tokenizer's pair framing, segment ids 0 / 1 (XLNet: <cls> 2), cut
    longest-first (BERT's rule: the longer sentence loses a token until the pair fits)."""
    _check_batch(first, "first sentences")
    if len(first) != len(second):
        raise ValueError(f"{len(first)} first sentences but {len(second)} second sentences")
    return _tensors(tokenizer(list(first), list(second), truncation="longest_first", max_length=max_length,
                              padding=_padding(dynamic_padding), return_tensors="pt"))


def characters_per_window(tokenizer: TokenizersBackend, max_length: int) -> int:
    """How many characters fit in one row of max_length beside the family's special tokens."""
    width = max_length - tokenizer.num_special_tokens_to_add()
    if width < 1:
        raise ValueError(f"max_length {max_length} leaves no room for a character beside "
                         f"{tokenizer.num_special_tokens_to_add()} special tokens")
    return width


def _character_lookup(tokenizer: TokenizersBackend) -> Callable[[str], int]:
    """char -> vocabulary id as the tokenizer's normaliser sees the char (BERT lower-cases,
    sentencepiece applies NFKC); the unknown token's id when the vocabulary lacks it."""
    vocab = tokenizer.get_vocab()
    normalizer = tokenizer.backend_tokenizer.normalizer
    unk = tokenizer.unk_token_id

    @functools.cache  # a corpus repeats its few thousand characters millions of times
    def lookup(char: str) -> int:
        # BERT's normaliser pads a CJK character with spaces; the character itself is looked up
        key = (normalizer.normalize_str(char) if normalizer is not None else char).strip()
        return vocab.get(key, unk) if key else unk

    return lookup


def encode_characters(tokenizer: TokenizersBackend, texts: Sequence[Sequence[str]], max_length: int,
                      dynamic_padding: bool = False) -> dict[str, torch.Tensor]:
    """NER rows: exactly one position per character, inside the family's framing, plus char_mask
    (1 on the positions that hold a character, in character order), so tag i sits at the i-th
    position of char_mask. A text longer than characters_per_window raises: windowing is the
    caller's job, a silently cut sentence would lose tags.

    Run through the tokenizer's own pipeline, a space would vanish and a character could split
    into several pieces (sentencepiece prefixes word starts with "▁"). So the framing, padding
    and segment ids come from the tokenizer applied to one unknown token per character (a special
    token is never split), and each character's id is then put at its position.
    """
    _check_batch(texts, "character sequences")
    width = characters_per_window(tokenizer, max_length)
    for i, chars in enumerate(texts):
        if not 1 <= len(chars) <= width:
            raise ValueError(f"text {i} has {len(chars)} characters; a row of max_length {max_length} "
                             f"holds 1 to {width} (split longer texts into windows)")
    lookup = _character_lookup(tokenizer)
    placeholders = [[tokenizer.unk_token] * len(chars) for chars in texts]
    encoding = tokenizer(placeholders, is_split_into_words=True, max_length=max_length,
                         padding=_padding(dynamic_padding), return_tensors="pt")
    input_ids = encoding["input_ids"].clone()
    char_mask = torch.zeros_like(input_ids)
    for row, chars in enumerate(texts):
        positions = [p for p, word in enumerate(encoding.word_ids(row)) if word is not None]
        if len(positions) != len(chars):
            raise RuntimeError(f"the tokenizer split its unknown token {tokenizer.unk_token!r}: framing gave "
                               f"{len(positions)} positions for {len(chars)} characters")
        input_ids[row, positions] = torch.tensor([lookup(c) for c in chars], dtype=input_ids.dtype)
        char_mask[row, positions] = 1
    return {**_tensors(encoding), "input_ids": input_ids, "char_mask": char_mask}

"""The pre-training corpus: documents of sentences, encoded as the project's char tokens.

Format (BERT's pre-training format): UTF-8 text, one sentence per line, a blank line between
documents. A corpus directory holds `train.txt` and `heldout.txt`.

Every family reads the same char tokens (`segment.char_tokens`, what fine-tuning reads), so that
their vocabularies and sequence lengths compare. The families that mask words or phrases also get,
per token, the jieba word it belongs to and that word's part of speech (jieba.posseg, HMM off as in
`segment.word_tokens`). A token belongs to the word its first character is in.
"""
from __future__ import annotations

import logging
import os
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from tokenizers import Tokenizer

from zhbench.io import BadInputError
from zhbench.text.segment import char_tokens
from zhbench.text.vocab import build_wordlevel

SPLITS = ("train", "heldout")
# What jieba.posseg tags a word it has no dictionary tag for, with the HMM off: digits, latin
# letters, anything else.
NON_DICTIONARY_TAGS = ("m", "eng", "x")


@dataclass(frozen=True)
class Sentence:
    """One sentence (or a piece of one that did not fit a sequence), without [CLS]/[SEP]."""

    ids: np.ndarray  # token ids
    words: np.ndarray | None = None  # per token: which jieba word of the sentence it belongs to (0, 0, 1, ...)
    pos: np.ndarray | None = None  # per token: the POS_TAGS index of its word's part of speech

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, part: slice) -> "Sentence":
        return Sentence(self.ids[part], None if self.words is None else self.words[part],
                        None if self.pos is None else self.pos[part])


def join(sentences: Sequence[Sentence]) -> Sentence:
    """One token sequence; word numbers are shifted so that no two sentences share a word."""
    if len(sentences) == 1:
        return sentences[0]
    ids = np.concatenate([s.ids for s in sentences])
    if sentences[0].words is None:
        return Sentence(ids)
    words, offset = [], 0
    for s in sentences:
        words.append(s.words + offset)
        offset += int(s.words.max()) + 1 if len(s) else 0
    return Sentence(ids, np.concatenate(words), np.concatenate([s.pos for s in sentences]))


@dataclass(frozen=True)
class Example:
    """Consecutive sentences of one document that fit one sequence: what a collator turns into a row."""

    index: int  # position in its split (static masking is seeded by it)
    document: int  # the document it came from (a random "next sentence" must come from another)
    sentences: tuple[Sentence, ...]

    def __len__(self) -> int:
        return sum(len(s) for s in self.sentences)


# --------------------------------------------------------------------------------------------------
# Reading


def split_path(corpus_dir: str | os.PathLike, split: str) -> Path:
    if split not in SPLITS:
        raise ValueError(f"unknown corpus split {split!r}; expected one of {SPLITS}")
    path = Path(corpus_dir) / f"{split}.txt"
    if not path.is_file():
        raise BadInputError(path, None, f"expected the corpus's {split} split (one sentence per line, "
                                        "a blank line between documents); the file is missing")
    return path


def read_documents(path: str | os.PathLike) -> list[list[str]]:
    """The documents of a corpus file, each a list of sentences; blank lines separate documents."""
    documents: list[list[str]] = [[]]
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            try:
                line = raw.decode("utf-8").strip()
            except UnicodeDecodeError as e:
                raise BadInputError(path, lineno, f"expected UTF-8 text: {e}") from None
            if line:
                documents[-1].append(line)
            elif documents[-1]:
                documents.append([])
    documents = [d for d in documents if d]
    if not documents:
        raise BadInputError(path, None, "expected at least one sentence, found none")
    return documents


def char_tokenizer(texts: Iterable[str], min_frequency: int = 1, max_size: int | None = None) -> Tokenizer:
    """The project's WordLevel vocabulary (text.vocab.build_wordlevel) over the char tokens of `texts`."""
    counts: Counter = Counter()
    for text in texts:
        counts.update(char_tokens(text))
    return build_wordlevel(counts, min_frequency, max_size)


# --------------------------------------------------------------------------------------------------
# Encoding


@lru_cache(maxsize=1)
def _posseg():
    import jieba
    import jieba.posseg

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()
    return jieba.posseg


@lru_cache(maxsize=1)
def pos_tags() -> tuple[str, ...]:
    """Every part of speech jieba.posseg can return with the HMM off: its dictionary's tags and
    NON_DICTIONARY_TAGS, sorted so that the ids do not depend on dictionary order."""
    posseg = _posseg()
    posseg.dt.initialize()  # loads word_tag_tab
    return tuple(sorted(set(posseg.dt.word_tag_tab.values()) | set(NON_DICTIONARY_TAGS)))


def tagged_tokens(text: str) -> tuple[list[str], list[int], list[str]]:
    """(char tokens, word number per token, POS tag per token) of one sentence."""
    tokens = char_tokens(text)
    pairs = [(p.word, p.flag) for p in _posseg().lcut(text, HMM=False)]
    word_of_char = np.empty(len(text), dtype=np.int64)
    start = 0
    for k, (word, _) in enumerate(pairs):
        word_of_char[start:start + len(word)] = k
        start += len(word)
    if start != len(text):
        raise AssertionError(f"jieba.posseg did not cover the sentence: {text!r}")
    words, tags, at = [], [], 0
    for tok in tokens:
        at = text.index(tok, at)
        words.append(int(word_of_char[at]))
        tags.append(pairs[words[-1]][1])
        at += len(tok)
    return tokens, words, tags


def encode_documents(documents: Sequence[Sequence[str]], tokenizer: Tokenizer, max_tokens: int,
                     with_words: bool = False) -> list[list[Sentence]]:
    """Token ids of every sentence (cut into pieces of at most `max_tokens`), and with `with_words`
    the jieba words and parts of speech. Sentences without tokens are dropped."""
    if max_tokens < 1:
        raise ValueError(f"max_tokens must be positive, got {max_tokens}")
    tag_id = {t: i for i, t in enumerate(pos_tags())} if with_words else {}
    out: list[list[Sentence]] = []
    for doc in documents:
        sentences = []
        for text in doc:
            if with_words:
                tokens, words, tags = tagged_tokens(text)
                try:
                    pos = np.array([tag_id[t] for t in tags], dtype=np.int64)
                except KeyError as e:
                    raise ValueError(f"jieba returned part of speech {e.args[0]!r}, which is not in pos_tags(); "
                                     "a user dictionary may have added it") from None
                extra = dict(words=np.array(words, dtype=np.int64), pos=pos)
            else:
                tokens, extra = char_tokens(text), {}
            if not tokens:
                continue
            ids = np.array(tokenizer.encode(tokens, is_pretokenized=True, add_special_tokens=False).ids, dtype=np.int64)
            sentence = Sentence(ids, **extra)
            sentences += [sentence[i:i + max_tokens] for i in range(0, len(sentence), max_tokens)]
        if sentences:
            out.append(sentences)
    return out


def pack(documents: Sequence[Sequence[Sentence]], max_tokens: int) -> list[Example]:
    """Consecutive sentences of a document, as many as fit `max_tokens`, per example (BERT's
    create_pretraining_data without its random short sequences). Never crosses documents."""
    examples: list[Example] = []
    for d, doc in enumerate(documents):
        current: list[Sentence] = []
        for sentence in doc:
            if current and sum(map(len, current)) + len(sentence) > max_tokens:
                examples.append(Example(len(examples), d, tuple(current)))
                current = []
            current.append(sentence)
        if current:
            examples.append(Example(len(examples), d, tuple(current)))
    return examples

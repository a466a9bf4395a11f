"""The deduplicated, decontaminated pretraining corpus: train.txt and heldout.txt in BERT's format.

Format (what the pretraining stage reads): one sentence per line, a blank line between documents,
UTF-8, so next-sentence / sentence-order objectives can take consecutive sentences of a document.

Each document of each configured source, in the order of `CorpusParams.sources` and then file order,
goes through these steps; a removed sentence is counted under the first step that removes it:
1. lines cleaned and split into sentences (zhbench.text.sentences);
2. `short`: sentences with fewer than `min_sentence_cjk` CJK characters (bylines, numbers, URLs);
3. `evaluation`: sentences repeating an evaluation split's text (zhbench.data.decontaminate), counted
   per rule and per split;
4. `duplicate_documents`: a document whose remaining text has the key of an earlier one goes whole;
5. `duplicate_sentences`: a sentence whose key was kept before, anywhere in the corpus, so no sentence
   is both in train and held out;
6. `emptied_documents`: a document left without sentences.
The held-out split is by document: a document is held out when the hash of (seed, its key) falls in
the first `heldout_share` of the hash range, so the choice depends on the text only, not on its
position or on the other sources.
"""
from __future__ import annotations

import hashlib
import os
from collections import Counter
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from zhbench import params as P
from zhbench.data.corpus_sources import EVALUATION_SPLITS, SOURCES, Document
from zhbench.data.decontaminate import RULES, EvaluationIndex
from zhbench.data.download import digests
from zhbench.io import BadInputError, atomic_dir, read_json, write_json
from zhbench.text.sentences import cjk_count, clean_paragraphs, match_key, split_sentences

PARTS = ("train", "heldout")
REMOVED = ("short", "duplicate_documents", "duplicate_document_sentences", "duplicate_sentences",
           "emptied_documents")


@dataclass(frozen=True)
class CorpusParams:
    sources: tuple[str, ...]
    heldout_share: float = 0.01
    min_sentence_cjk: int = 5
    contained_min_chars: int = 8  # EvaluationIndex.min_chars
    seed: int = 42

    def __post_init__(self):
        unknown = [s for s in self.sources if s not in SOURCES]
        if unknown or not self.sources:
            raise ValueError(f"corpus.sources: unknown {unknown or 'empty list'}; known: {', '.join(SOURCES)}")
        if len(set(self.sources)) != len(self.sources):
            raise ValueError(f"corpus.sources lists a source twice: {list(self.sources)}")
        if not 0 < self.heldout_share < 1:
            raise ValueError(f"corpus.heldout_share must be in (0, 1), got {self.heldout_share}")

    @classmethod
    def from_params(cls, params: dict) -> "CorpusParams":
        """From params.yaml's `corpus:` section and its top-level `seed`."""
        c = dict(P.section(params, "corpus"))
        knobs = {f.name for f in fields(cls)} - {"seed"}
        if unknown := sorted(set(c) - knobs) or sorted({"sources"} - set(c)):
            raise ValueError(f"params corpus: unknown or missing key(s) {unknown}; keys: {', '.join(sorted(knobs))}")
        return cls(**(c | {"sources": tuple(c["sources"]), "seed": P.section(params, "seed")}))


@dataclass
class Corpus:
    parts: dict[str, list[list[str]]] = field(default_factory=lambda: {p: [] for p in PARTS})
    stats: dict = field(default_factory=dict)


def is_heldout(doc_key: str, seed: int, share: float) -> bool:
    digest = hashlib.sha256(f"{seed}\0{doc_key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") < share * 2**64


def evaluation_index(raw: Path, min_chars: int) -> tuple[EvaluationIndex, dict[str, int]]:
    texts: list[tuple[str, str]] = []
    counts: dict[str, int] = {}
    for split in EVALUATION_SPLITS.values():
        read = list(split.read(raw))
        counts[split.name] = len(read)
        texts += [(split.name, t) for t in read]
    return EvaluationIndex(texts, min_chars), counts


def _part_counts(docs: list[list[str]]) -> dict[str, int]:
    return {"documents": len(docs), "sentences": sum(map(len, docs)),
            "characters": sum(len(s) for d in docs for s in d),
            "cjk_characters": sum(cjk_count(s) for d in docs for s in d)}


def build_corpus(raw: str | os.PathLike, params: CorpusParams) -> Corpus:
    """Read every configured source under `raw` (data/raw) and build the corpus and its stats."""
    raw = Path(raw)
    index, eval_counts = evaluation_index(raw, params.contained_min_chars)
    corpus = Corpus()
    seen_docs: set[str] = set()
    seen_sentences: set[str] = set()
    per_source = {}
    for name in params.sources:
        kept, per_source[name] = _build_source(raw, name, params, index, seen_docs, seen_sentences)
        for p in PARTS:
            corpus.parts[p] += kept[p]
    total = {p: _part_counts(corpus.parts[p]) for p in PARTS}
    corpus.stats = {
        "inputs": input_digests(raw, params),
        "params": asdict(params) | {"sources": list(params.sources)},
        "evaluation_splits": {"texts": eval_counts, "index_keys": len(index)},
        "sources": per_source,
        "total": total | {"heldout_share": {
            unit: total["heldout"][unit] / max(1, total["train"][unit] + total["heldout"][unit])
            for unit in ("documents", "characters")}},
    }
    return corpus


def _build_source(raw: Path, name: str, params: CorpusParams, index: EvaluationIndex,
                  seen_docs: set[str], seen_sentences: set[str]) -> tuple[dict[str, list[list[str]]], dict]:
    """One source's kept documents by part, and its stats (steps 1-6 of the module doc)."""
    read = Counter(documents=0, sentences=0)
    removed = Counter(dict.fromkeys(REMOVED, 0))
    by_rule: Counter = Counter()
    by_split: Counter = Counter()
    kept: dict[str, list[list[str]]] = {p: [] for p in PARTS}
    for doc in SOURCES[name].read(raw):
        split = _sentences(doc)
        read["documents"] += 1
        read["sentences"] += len(split)
        sentences = []
        for s in split:
            if cjk_count(s) < params.min_sentence_cjk:
                removed["short"] += 1
            elif hit := index.match(s):
                by_rule[hit.rule] += 1
                by_split[hit.split] += 1
            else:
                sentences.append(s)
        if not sentences:
            removed["emptied_documents"] += 1
            continue
        doc_key = match_key("\n".join(sentences))
        if doc_key in seen_docs:
            removed["duplicate_documents"] += 1
            removed["duplicate_document_sentences"] += len(sentences)
            continue
        seen_docs.add(doc_key)
        out = []
        for s in sentences:
            key = match_key(s)
            if key in seen_sentences:
                removed["duplicate_sentences"] += 1
            else:
                seen_sentences.add(key)
                out.append(s)
        if not out:
            removed["emptied_documents"] += 1
            continue
        kept["heldout" if is_heldout(doc_key, params.seed, params.heldout_share) else "train"].append(out)
    stats = {
        "read": dict(read),
        "evaluation_removed": {"sentences": sum(by_rule.values()), "by_rule": {r: by_rule[r] for r in RULES},
                               "by_split": {s: by_split[s] for s in EVALUATION_SPLITS}},
        "removed": dict(removed),
        **{p: _part_counts(kept[p]) for p in PARTS},
    }
    return kept, stats


def _sentences(doc: Document) -> list[str]:
    return [s for para in clean_paragraphs(doc) for s in split_sentences(para)]


def input_digests(raw: Path, params: CorpusParams) -> dict:
    """sha256 of every corpus archive a source reads (from the download manifest) and of every file read."""
    files = sorted({f for n in params.sources for f in SOURCES[n].files}
                   | {f for e in EVALUATION_SPLITS.values() for f in e.files})
    needed = sorted({SOURCES[n].archive for n in params.sources} - {None})
    archives = {}
    if needed:
        manifest = read_json(raw / "corpus" / "SOURCE.json")["archives"]
        for name in needed:
            if name not in manifest:
                raise BadInputError(raw / "corpus" / "SOURCE.json", None,
                                    f"no archive {name!r} in the download manifest; rerun the download_corpus stage")
            archives[name] = {k: manifest[name][k] for k in ("requirement", "file", "sha256", "bytes", "licence")}
    return {"archives": archives, "files": {f: digests(raw / f).sha256 for f in files}}


def write_corpus(corpus: Corpus, out_dir: str | os.PathLike, stats_path: str | os.PathLike) -> None:
    with atomic_dir(out_dir) as tmp:
        for p in PARTS:
            text = "\n\n".join("\n".join(doc) for doc in corpus.parts[p])
            (tmp / f"{p}.txt").write_text(text + "\n" if text else "", encoding="utf-8")
    write_json(stats_path, corpus.stats)

"""The Predictor interface and what several model kinds share: the error of loading one, the
predictor of every encoder-fed classifier (BackbonePredictor), and text in, predictions out
(TextClassifier).

The loader of each kind (zhbench.predict's own, zhbench.quantize's, the TextCNN student's, the
ensemble's, the linear n-gram's) builds on this module; the registry that picks a loader for a model
dir is zhbench.predict, and nothing here imports it.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Protocol, Sequence, runtime_checkable

import numpy as np

from zhbench.text import segment


class ModelLoadError(RuntimeError):
    """A model dir that cannot be served: missing, corrupt, unsafe or of an unknown kind."""


@runtime_checkable
class Predictor(Protocol):
    """What every loaded model offers. Column j of `predict_proba` is label id j."""

    labels: list[str]
    granularity: str

    def predict_proba(self, token_strings: list[str]) -> np.ndarray:
        """(len(token_strings), len(labels)) float probabilities; each row sums to 1."""
        ...


class BackbonePredictor:
    """A classifier behind the encoder it was trained with (zhbench.encoders): the project vocabulary
    over segmented tokens, or the checkpoint's own tokenizer over raw titles. Fixed-length padding
    makes a title's probabilities independent of the other titles in its batch."""

    def __init__(self, model, encoder, labels: list[str], granularity: str, max_len: int, batch_size: int = 64):
        self._model = model
        self.encoder = encoder
        self.labels = labels
        self.granularity = granularity
        self.max_len = max_len
        self.batch_size = batch_size

    def prepare(self, title: str, stopwords: Iterable[str] = ()) -> str:
        """The model's input line for a raw title, as its evaluation split holds it."""
        return self.encoder.prepare(title, stopwords)

    def predict_proba(self, inputs: list[str]) -> np.ndarray:
        import torch

        from zhbench.models.backbones import logits_of

        chunks = []
        with torch.inference_mode():
            for start in range(0, len(inputs), self.batch_size):
                enc = self.encoder.encode(inputs[start:start + self.batch_size], self.max_len)
                logits = logits_of(self._model(**enc))
                chunks.append(torch.softmax(logits.float(), dim=-1).double().numpy())
        if not chunks:
            return np.zeros((0, len(self.labels)), dtype=np.float64)
        return np.concatenate(chunks)


def labels_from(extra: dict[str, Any], labels: list[str] | None, model_dir: Path) -> list[str]:
    """The label names of a model dir: those its zhbench.json `extra` records, else the given ones;
    both given and different is an error."""
    dir_labels = extra.get("labels")
    if dir_labels and labels is not None and list(labels) != list(dir_labels):
        raise ValueError(f"{model_dir}: its labels {dir_labels} differ from the given label names {labels}")
    out = list(dir_labels or labels or [])
    if not out:
        raise ValueError(f"{model_dir}: no label names in zhbench.json; give the dataset's labels.txt")
    return out


# --------------------------------------------------------------------------------------------------
# Text in, predictions out


@dataclass(frozen=True)
class Prediction:
    label_id: int
    label: str
    probability: float
    top_k: list[tuple[int, str, float]]  # (label id, label, probability), most probable first


class TextClassifier:
    """Segmentation + a Predictor: raw titles in, label probabilities out.

    Calls into the predictor are serialised by a lock: the service runs requests in a thread pool,
    and on a small CPU one model call at a time (each using its own intra-op threads) is faster than
    several competing ones, and no model has to be thread-safe.
    """

    def __init__(self, predictor: Predictor, stopwords: Iterable[str] = ()):
        self.predictor = predictor
        self.labels = list(predictor.labels)
        self.granularity = predictor.granularity
        self.stopwords = frozenset(stopwords)
        self._lock = threading.Lock()

    def tokens(self, text: str) -> str:
        """The model's input line for a raw title, as its evaluation split holds it: the predictor's
        own preparation where it has one (a checkpoint tokenizer reads the raw title), else the
        space-joined tokens the preprocess stage wrote."""
        prepare = getattr(self.predictor, "prepare", None)
        if prepare is not None:
            return prepare(text, self.stopwords)
        return " ".join(segment(text, self.granularity, self.stopwords))

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        return self.predict_proba_tokens([self.tokens(t) for t in texts])

    def predict_proba_tokens(self, token_strings: list[str]) -> np.ndarray:
        with self._lock:
            return self.predictor.predict_proba(token_strings)

    def predict(self, texts: Sequence[str], k: int = 3) -> list[Prediction]:
        return self.predict_tokens([self.tokens(t) for t in texts], k)

    def predict_tokens(self, token_strings: list[str], k: int = 3) -> list[Prediction]:
        probs = self.predict_proba_tokens(token_strings)
        # stable sort on -p: equal probabilities keep the lower label id first, as argmax does
        order = np.argsort(-probs, axis=1, kind="stable")[:, :k]
        out = []
        for row, cols in zip(probs, order):
            top = [(int(c), self.labels[c], float(row[c])) for c in cols]
            out.append(Prediction(label_id=top[0][0], label=top[0][1], probability=top[0][2], top_k=top))
        return out

"""Entities from a trained NER model (models/ner/<variant>), exactly as the evaluate_ner stage
decodes them: the saved tagger and its character encoder, windows of max_len, BIO paths joined
back per text, spans in CLUENER's convention (end inclusive)."""
from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Sequence


class EntityTagger:
    """Calls into the model are serialised by a lock, as TextClassifier's are: the service runs
    requests in a thread pool."""

    granularity = "char"

    def __init__(self, model_dir: str | os.PathLike):
        from zhbench.models.crf_tagger import load_tagger
        from zhbench.ner import NerConfig, load_char_encoder
        from zhbench.predictors import ModelLoadError

        if not (Path(model_dir) / "zhbench.json").is_file():
            raise ModelLoadError(f"{model_dir}: no trained NER model here (expected zhbench.json; run train_ner)")
        try:
            self.model, self.extra = load_tagger(model_dir)
            self.cfg = NerConfig.from_dict(self.extra["config"])
            self.encoder = load_char_encoder(model_dir, self.extra)
            self.variant = self.extra["train"]["variant"]
        except Exception as err:  # corrupt files surface as many exception types; name them all the same way
            raise ModelLoadError(f"{model_dir}: cannot load the NER model: {type(err).__name__}: {err}") from err
        self._lock = threading.Lock()

    @property
    def labels(self) -> list[str]:
        """The entity types the tagger can emit, in the order of its BIO tags (what /labels lists)."""
        from zhbench.data.ner import OUTSIDE

        return list(dict.fromkeys(tag[2:] for tag in self.extra["tags"] if tag != OUTSIDE))

    def entities(self, texts: Sequence[str]) -> list[list[dict]]:
        """Per text: [{text, type, start, end}] with end inclusive, in reading order."""
        from zhbench.data.ner import OUTSIDE, Sentence, bio_to_spans
        from zhbench.ner import predict

        sentences = [Sentence(chars=list(t), tags=[OUTSIDE] * len(t)) for t in texts]
        with self._lock:
            tags, _, _ = predict(self.model, sentences, self.encoder, self.extra["tags"], self.cfg.max_len,
                                 self.cfg.eval_batch_size)
        return [[{"text": t[s.start:s.end + 1], "type": s.type, "start": s.start, "end": s.end}
                 for s in bio_to_spans(path)] for t, path in zip(texts, tags)]

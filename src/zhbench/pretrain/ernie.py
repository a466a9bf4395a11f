"""ERNIE (Sun et al., 2019): knowledge masking, plus next sentence prediction.

ERNIE masks three levels of units: single characters (basic), phrases and named entities, each
masked whole so the model must recover a whole concept from its context. ERNIE found phrases and
entities with a chunker and an NER tagger; here both come from jieba's parts of speech:
- entities: words tagged nr/nrfg/nrt (person), ns (place), nt (organisation), nz (other proper noun);
- phrases: idioms and set phrases (i, l), and runs of two or more adjacent words that make a noun
  phrase (nouns, verbal/adjectival nouns, adjectives, distinguishing words, numerals, measure
  words: 海棠 公社, 两 套 住房);
- everything else: one unit per character.
The model is transformers' ErnieForPreTraining (MLM + NSP head), so the pooler the fine-tuning
classifier reads is trained too.
"""
from __future__ import annotations

import numpy as np
from transformers import ErnieForPreTraining

from zhbench.pretrain.corpus import pos_tags
from zhbench.pretrain.masking import units_of
from zhbench.pretrain.mlm import SentencePairObjective
from zhbench.pretrain.objective import Row

ENTITY_TAGS = frozenset({"nr", "nrfg", "nrt", "ns", "nt", "nz"})
SET_PHRASE_TAGS = frozenset({"i", "l"})
NOUN_PHRASE_TAGS = frozenset({"n", "ng", "vn", "an", "a", "b", "m", "mq", "q"})


def knowledge_units(words: list[np.ndarray], tags: list[str]) -> list[np.ndarray]:
    """Entity, phrase and character units from the row's words (position arrays) and their tags."""
    units: list[np.ndarray] = []
    run: list[np.ndarray] = []

    def close_run():
        if len(run) >= 2:
            units.append(np.concatenate(run))
        else:
            units.extend(p[None] for w in run for p in w)
        run.clear()

    for word, tag in zip(words, tags):
        if tag in NOUN_PHRASE_TAGS:
            if run and run[-1][-1] + 1 != word[0]:  # a special token in between ends the phrase
                close_run()
            run.append(word)
            continue
        close_run()
        if tag in ENTITY_TAGS or tag in SET_PHRASE_TAGS:
            units.append(word)
        else:
            units.extend(p[None] for p in word)
    close_run()
    return units


class ErnieObjective(SentencePairObjective):
    family = "ernie"
    with_words = True
    sentence_task, sentence_label, sentence_logits = "nsp", "next_sentence_label", "seq_relationship_logits"

    def units(self, row: Row) -> list[np.ndarray]:
        words = units_of(np.where(self.regular(row.ids), row.words, -1))
        names = pos_tags()
        return knowledge_units(words, [names[row.pos[w[0]]] for w in words])

    def build_model(self, overrides=None):
        return ErnieForPreTraining(self.config(overrides))

    def backbone_state(self, model):
        return model.config, model.ernie.state_dict()

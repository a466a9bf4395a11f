"""RoBERTa-wwm (chinese-roberta-wwm-ext, Cui et al., 2021): BERT's architecture, no NSP, dynamic
whole-word masking over jieba words.

Dynamic: the masks come from the collator's generator, so each pass over the data masks an
example anew (RoBERTa, Liu et al., 2019). Whole-word: a chosen word is masked with all its
characters (the Chinese WWM of Cui et al., which segmented with LTP; jieba here).
"""
from __future__ import annotations

from transformers import BertForMaskedLM

from zhbench.pretrain.mlm import MaskedLMObjective


class RobertaObjective(MaskedLMObjective):
    family = "roberta"
    with_words = True

    def build_model(self, overrides=None):
        return BertForMaskedLM(self.config(overrides))

    def backbone_state(self, model):
        return model.config, model.bert.state_dict()

"""ALBERT (Lan et al., 2020): masked LM with n-gram masking plus sentence order prediction.

N-gram masking as in the paper: a masked span is n consecutive tokens, p(n) proportional to 1/n
for n <= 3. SOP replaces NSP: B follows A, or the two are swapped (pairs.py).
"""
from __future__ import annotations

from transformers import AlbertForPreTraining

from zhbench.pretrain.mlm import SentencePairObjective


class AlbertObjective(SentencePairObjective):
    family = "albert"
    ngram_weights = (6 / 11, 3 / 11, 2 / 11)
    sentence_task, sentence_label, sentence_logits = "sop", "sentence_order_label", "sop_logits"

    def build_model(self, overrides=None):
        return AlbertForPreTraining(self.config(overrides))

    def backbone_state(self, model):
        return model.config, model.albert.state_dict()

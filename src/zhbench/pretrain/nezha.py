"""NeZha (Wei et al., 2019): whole-word masked LM on the project's NeZha (relative positions).

NeZha was pre-trained with whole-word masking; here that is the whole objective, with
RoBERTa-wwm's masking (roberta.py) on NezhaForMaskedLM.
"""
from __future__ import annotations

from zhbench.models.nezha import NezhaForMaskedLM
from zhbench.pretrain.roberta import RobertaObjective


class NezhaObjective(RobertaObjective):
    family = "nezha"

    def build_model(self, overrides=None):
        return NezhaForMaskedLM(self.config(overrides))

    def backbone_state(self, model):
        return model.config, model.nezha.state_dict()

"""BERT (Devlin et al., 2019): masked LM with static masks plus next sentence prediction.

Static masking is BERT's: create_pretraining_data.py fixed the masks before training (each
sequence copied dupe_factor times, each copy masked once). Here there is one copy: an example's
masks, its A/B split and its random next sentence come from a generator seeded by
(mask_seed, example index), so an example looks the same every epoch (RoBERTa's dynamic masking,
see roberta.py, is the contrast).
"""
from __future__ import annotations

import numpy as np
from tokenizers import Tokenizer
from transformers import BertForPreTraining

from zhbench.pretrain.corpus import Example
from zhbench.pretrain.mlm import SentencePairObjective


class BertObjective(SentencePairObjective):
    family = "bert"
    sentence_task, sentence_label, sentence_logits = "nsp", "next_sentence_label", "seq_relationship_logits"

    def __init__(self, tokenizer: Tokenizer, max_len: int = 128, mlm_probability: float = 0.15, mask_seed: int = 0):
        super().__init__(tokenizer, max_len, mlm_probability)
        self.mask_seed = mask_seed

    def example_rng(self, example: Example, rng: np.random.Generator) -> np.random.Generator:
        return np.random.default_rng([self.mask_seed, example.index])

    def build_model(self, overrides=None):
        return BertForPreTraining(self.config(overrides))

    def backbone_state(self, model):
        return model.config, model.bert.state_dict()

"""MacBERT (Cui et al., 2020): masked LM as correction, plus sentence order prediction.

MacBERT masks whole words and word n-grams (1- to 4-grams with probability 40/30/20/10%) and,
instead of [MASK], which fine-tuning never sees, puts a *similar* word in their place (80%), a
random word (10%) or the original (10%). The model learns to correct the text back. Similar words
here are similar characters from jieba's bundled LAC embedding (similar.py says why). The
architecture is BERT's; its NSP head, given sentence-order labels, is the SOP classifier.
"""
from __future__ import annotations

import dataclasses

from tokenizers import Tokenizer
from transformers import BertForPreTraining

from zhbench.pretrain.mlm import SentencePairObjective
from zhbench.pretrain.similar import similar_tokens


class MacbertObjective(SentencePairObjective):
    family = "macbert"
    with_words = True
    ngram_weights = (0.4, 0.3, 0.2, 0.1)
    sentence_task, sentence_label, sentence_logits = "sop", "next_sentence_label", "seq_relationship_logits"

    def __init__(self, tokenizer: Tokenizer, max_len: int = 128, mlm_probability: float = 0.15, similar_k: int = 5):
        super().__init__(tokenizer, max_len, mlm_probability)
        self.corruption = dataclasses.replace(
            self.corruption, similar=similar_tokens(self.vocab, self.regular_ids, similar_k))

    def build_model(self, overrides=None):
        return BertForPreTraining(self.config(overrides))

    def backbone_state(self, model):
        return model.config, model.bert.state_dict()

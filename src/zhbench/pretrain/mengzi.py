"""Mengzi (Zhang et al., 2021): whole-word masked LM plus a linguistic task, part-of-speech
tagging of every token (jieba.posseg's tag of the word the token is in).

Mengzi-BERT is BERT's architecture with linguistically informed pre-training objectives added to
masked LM; part-of-speech tagging is such a task that jieba can label offline. The model is
BertModel with transformers' BertOnlyMLMHead (tied to the word embeddings, as BertForMaskedLM)
and a linear POS classifier over the same last hidden states; the two losses are added.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn
from transformers import BertConfig, BertModel, BertPreTrainedModel
from transformers.modeling_outputs import ModelOutput
from transformers.models.bert.modeling_bert import BertOnlyMLMHead

from zhbench.pretrain.corpus import pos_tags
from zhbench.pretrain.masking import IGNORE
from zhbench.pretrain.mlm import MaskedLMObjective
from zhbench.pretrain.objective import Batch, Row, accuracy, pad


@dataclass
class MengziPreTrainingOutput(ModelOutput):
    loss: torch.Tensor | None = None
    mlm_loss: torch.Tensor | None = None
    pos_loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None  # MLM, (B, L, vocab)
    pos_logits: torch.Tensor | None = None  # (B, L, POS tags)


class MengziForPreTraining(BertPreTrainedModel):
    _tied_weights_keys = {
        "cls.predictions.decoder.weight": "bert.embeddings.word_embeddings.weight",
        "cls.predictions.decoder.bias": "cls.predictions.bias",
    }

    def __init__(self, config: BertConfig, num_pos_tags: int):
        super().__init__(config)
        self.bert = BertModel(config, add_pooling_layer=False)
        self.cls = BertOnlyMLMHead(config)
        self.pos_dropout = nn.Dropout(config.hidden_dropout_prob)
        self.pos_classifier = nn.Linear(config.hidden_size, num_pos_tags)
        self.post_init()

    def get_output_embeddings(self):
        return self.cls.predictions.decoder

    def set_output_embeddings(self, new_embeddings):
        self.cls.predictions.decoder = new_embeddings
        self.cls.predictions.bias = new_embeddings.bias

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, labels=None, pos_labels=None, **kwargs):
        """labels: MLM targets; pos_labels: POS tag ids; both IGNORE where nothing is predicted."""
        hidden = self.bert(input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                           return_dict=True).last_hidden_state
        logits = self.cls(hidden)
        pos_logits = self.pos_classifier(self.pos_dropout(hidden))
        if labels is None or pos_labels is None:
            return MengziPreTrainingOutput(logits=logits, pos_logits=pos_logits)
        mlm_loss = nn.functional.cross_entropy(logits.flatten(0, 1), labels.flatten())
        pos_loss = nn.functional.cross_entropy(pos_logits.flatten(0, 1), pos_labels.flatten())
        return MengziPreTrainingOutput(loss=mlm_loss + pos_loss, mlm_loss=mlm_loss, pos_loss=pos_loss,
                                       logits=logits, pos_logits=pos_logits)


class MengziObjective(MaskedLMObjective):
    family = "mengzi"
    with_words = True
    metrics = ("mlm_eval_acc", "pos_eval_acc")

    def build_model(self, overrides=None):
        return MengziForPreTraining(self.config(overrides), len(pos_tags()))

    def extend_batch(self, batch: Batch, rows: Sequence[Row]) -> Batch:
        # every real token is tagged, masked or not: a masked word's tag comes from its context
        batch["pos_labels"] = pad([r.pos for r in rows], IGNORE, batch["input_ids"].shape[1])
        return batch

    def accuracy_counts(self, batch, output):
        return {**super().accuracy_counts(batch, output),
                "pos_eval_acc": accuracy(output.pos_logits, batch["pos_labels"])}

    def backbone_state(self, model):
        return model.config, model.bert.state_dict()

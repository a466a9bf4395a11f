"""ELECTRA (Clark et al., 2020): replaced token detection.

A small generator (transformers' ElectraForMaskedLM, 1/4 of the discriminator's width) fills the
masked positions with tokens sampled from its own predictions; the discriminator
(ElectraForPreTraining) labels every token as original or replaced. The two train together, the
loss being generator MLM + 50 x discriminator loss, and share their token, position and segment
embeddings (the generator's output layer is tied to the same word embeddings). Only the
discriminator is kept: it is the backbone that fine-tunes.

Masking is ELECTRA's: 15% of the tokens, of which 85% become [MASK] and 15% keep their token
(its pretrain_helpers.mask); no random replacement, the generator supplies those.
"""
from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass

import torch
from tokenizers import Tokenizer
from torch import nn
from transformers import ElectraConfig, ElectraForMaskedLM, ElectraForPreTraining
from transformers.modeling_outputs import ModelOutput

from zhbench.pretrain.mlm import MaskedLMObjective
from zhbench.pretrain.objective import accuracy

RTD_WEIGHT = 50.0  # ELECTRA's lambda


@dataclass
class ElectraPreTrainingOutput(ModelOutput):
    loss: torch.Tensor | None = None
    generator_loss: torch.Tensor | None = None
    discriminator_loss: torch.Tensor | None = None
    generator_logits: torch.Tensor | None = None  # (B, L, vocab)
    discriminator_logits: torch.Tensor | None = None  # (B, L): > 0 means "replaced"
    replaced: torch.Tensor | None = None  # (B, L) 0/1: what the discriminator had to find


class ElectraReplacedTokenDetection(nn.Module):
    def __init__(self, discriminator_config: ElectraConfig, generator_config: ElectraConfig,
                 special_ids: torch.Tensor, rtd_weight: float = RTD_WEIGHT):
        super().__init__()
        if generator_config.embedding_size != discriminator_config.embedding_size:
            raise ValueError("generator and discriminator share embeddings: their embedding_size must match")
        self.generator = ElectraForMaskedLM(generator_config)
        self.discriminator = ElectraForPreTraining(discriminator_config)
        # The discriminator's head is dense -> gelu -> one-unit output, both at BERT's 0.02 init: at
        # mini width the logit then barely depends on the input, and training settles on the
        # constant answer "original" (the last hidden states collapse to one vector; measured: no
        # replaced token found after 1,200 steps, even with uniformly random replacements). With
        # the output unit at 1/sqrt(hidden), a Linear's usual scale, it finds them within a few
        # hundred steps.
        nn.init.normal_(self.discriminator.discriminator_predictions.dense_prediction.weight,
                        std=discriminator_config.hidden_size ** -0.5)
        embeddings = self.discriminator.electra.embeddings
        self.generator.electra.embeddings = embeddings
        self.generator.generator_lm_head.weight = embeddings.word_embeddings.weight
        self.rtd_weight = rtd_weight
        # the generator never proposes a special token: a sampled [SEP] or [PAD] would change the
        # sequence's structure, not its content
        self.register_buffer("special_ids", special_ids.clone(), persistent=False)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, labels=None, **kwargs):
        """labels: the masked positions' original ids, -100 elsewhere."""
        gen = self.generator(input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids, labels=labels)
        masked = labels != -100
        with torch.no_grad():
            logits = gen.logits[masked].float()
            logits[:, self.special_ids] = -float("inf")
            sampled = torch.multinomial(logits.softmax(-1), 1).squeeze(-1)
            corrupted = input_ids.clone()
            corrupted[masked] = sampled
            replaced = (corrupted != torch.where(masked, labels, input_ids)).long()
        disc = self.discriminator(corrupted, attention_mask=attention_mask, token_type_ids=token_type_ids,
                                  labels=replaced)
        return ElectraPreTrainingOutput(
            loss=gen.loss + self.rtd_weight * disc.loss, generator_loss=gen.loss, discriminator_loss=disc.loss,
            generator_logits=gen.logits, discriminator_logits=disc.logits, replaced=replaced,
        )


def generator_config(discriminator: ElectraConfig, fraction: float = 0.25) -> ElectraConfig:
    """ELECTRA's generator sizing: hidden, FFN and heads scaled by `fraction` (64-d heads, at
    least one); same depth, same embedding."""
    config = copy.deepcopy(discriminator)
    config.hidden_size = max(1, int(round(discriminator.hidden_size * fraction)))
    config.num_attention_heads = max(1, config.hidden_size // 64)
    config.intermediate_size = 4 * config.hidden_size
    return config


class ElectraObjective(MaskedLMObjective):
    family = "electra"
    metrics = ("mlm_eval_acc", "rtd_eval_acc", "rtd_replaced_eval_acc")
    untrained_prefixes = ()

    def __init__(self, tokenizer: Tokenizer, max_len: int = 128, mlm_probability: float = 0.15,
                 generator_fraction: float = 0.25):
        super().__init__(tokenizer, max_len, mlm_probability)
        self.corruption = dataclasses.replace(self.corruption, mask_prob=0.85, random_prob=0.0)
        self.generator_fraction = generator_fraction

    def build_model(self, overrides=None):
        config = self.config(overrides)
        return ElectraReplacedTokenDetection(config, generator_config(config, self.generator_fraction),
                                             torch.from_numpy(self.special_ids))

    def accuracy_counts(self, batch, output):
        real = batch["attention_mask"].bool()
        predicted = (output.discriminator_logits > 0).long()
        replaced = output.replaced.bool() & real
        return {
            "mlm_eval_acc": accuracy(output.generator_logits, batch["labels"]),
            # over every real token; always answering "original" scores the share of unreplaced ones
            "rtd_eval_acc": (int((predicted == output.replaced)[real].sum()), int(real.sum())),
            "rtd_replaced_eval_acc": (int(predicted[replaced].sum()), int(replaced.sum())),
        }

    def backbone_state(self, model):
        return model.discriminator.config, model.discriminator.electra.state_dict()

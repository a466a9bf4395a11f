"""XLNet (Yang et al., 2019): permutation language modeling.

The batch is what transformers' DataCollatorForPermutationLanguageModeling makes (spans of up to 5
tokens in every 1/(1/6) = 6 are predicted; a random factorisation order decides, through
perm_mask, which tokens each one may see; target_mapping is the identity), drawn in the same
order from a torch.Generator of the collator's own instead of torch's global generator: with the
same seed the two produce identical tensors (tests/test_pretrain.py checks). One thing is added:
attention_mask, so that no token attends to padding.
"""
from __future__ import annotations

from typing import Sequence

import torch
from transformers import XLNetLMHeadModel

from zhbench.pretrain.corpus import Example, join
from zhbench.pretrain.objective import Batch, Collator, Objective, accuracy, pad

PLM_PROBABILITY = 1 / 6
MAX_SPAN_LENGTH = 5


def permutation_targets(inputs: torch.Tensor, functional: torch.Tensor, mask_id: int, generator: torch.Generator,
                        plm_probability: float = PLM_PROBABILITY, max_span_length: int = MAX_SPAN_LENGTH):
    """(inputs, perm_mask, target_mapping, labels) as DataCollatorForPermutationLanguageModeling
    .torch_mask_tokens computes them. functional: True at special tokens and padding."""
    batch, length = inputs.shape
    if length % 2:
        raise ValueError(f"permutation LM needs an even sequence length (to split it in halves), got {length}")
    labels = inputs.clone()
    masked = torch.zeros(inputs.shape, dtype=torch.bool)
    target_mapping = torch.zeros((batch, length, length), dtype=torch.float32)
    for i in range(batch):
        cur = 0
        while cur < length:
            span = torch.randint(1, max_span_length + 1, (1,), generator=generator).item()
            context = int(span / plm_probability)
            start = cur + torch.randint(context - span + 1, (1,), generator=generator).item()
            masked[i, start:start + span] = True
            cur += context
        target_mapping[i] = torch.eye(length)
    masked &= ~functional
    inputs = inputs.clone()
    inputs[masked] = mask_id
    labels[~masked] = -100
    perm_mask = torch.zeros((batch, length, length), dtype=torch.float32)
    for i in range(batch):
        # a random factorisation order over the two halves, as the collator does
        order = torch.arange(length).reshape((-1, length // 2)).transpose(0, 1)
        order = torch.flatten(order[torch.randperm(length // 2, generator=generator)].transpose(0, 1))
        # unmasked real tokens come first: everyone sees them, they see no masked token
        order.masked_fill_(~masked[i] & ~functional[i], -1)
        perm_mask[i] = (order.reshape((length, 1)) <= order.reshape((1, length))) & masked[i]
    return inputs.long(), perm_mask, target_mapping, labels.long()


class XlnetObjective(Objective):
    family = "xlnet"
    metrics = ("plm_eval_acc",)
    pad_multiple = 2
    model_input_names = ("input_ids", "attention_mask")

    def collator(self, seed: int, pool: Sequence[Example] = ()) -> Collator:
        return Collator(self, torch.Generator().manual_seed(seed), pool)

    def collate(self, examples, generator, pool) -> Batch:
        ids = [self.frame(join(e.sentences)).ids for e in examples]
        n = self.length(ids)
        input_ids = pad(ids, self.pad_id, n)
        functional = torch.from_numpy(~self.regular(input_ids.numpy()))
        inputs, perm_mask, target_mapping, labels = permutation_targets(input_ids, functional, self.mask_id, generator)
        return {"input_ids": inputs, "attention_mask": (input_ids != self.pad_id).long(), "perm_mask": perm_mask,
                "target_mapping": target_mapping, "labels": labels}

    def build_model(self, overrides=None):
        return XLNetLMHeadModel(self.config(overrides))

    def accuracy_counts(self, batch, output):
        return {"plm_eval_acc": accuracy(output.logits, batch["labels"])}

    def backbone_state(self, model):
        return model.config, model.transformer.state_dict()

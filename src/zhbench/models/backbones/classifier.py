"""One classification head for every backbone: the family's sentence vector -> dropout -> linear."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput

from zhbench.models.backbones.families import family_of


class ClassificationHead(nn.Module):
    """dropout + linear over the sentence vector: the one head every backbone shares."""

    def __init__(self, hidden_size: int, num_labels: int, dropout: float = 0.1, init_std: float = 0.02):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(hidden_size, num_labels)
        # BERT's classifier init: small normal weights, zero bias (logits start near uniform)
        nn.init.normal_(self.out.weight, std=init_std)
        nn.init.zeros_(self.out.bias)

    def forward(self, sentence: torch.Tensor) -> torch.Tensor:
        return self.out(self.dropout(sentence))


class SequenceClassifier(nn.Module):
    """backbone -> sentence vector (per family, see zhbench.models.backbones.families) -> dropout -> linear."""

    def __init__(self, backbone: PreTrainedModel, family: str, num_labels: int, dropout: float = 0.1):
        super().__init__()
        self.family = family
        self._traits = family_of(family)
        self.pooling = self._traits.pooling
        self.num_labels = num_labels
        self.dropout_p = dropout
        self.backbone = backbone
        config = backbone.config
        self.head = ClassificationHead(
            config.hidden_size, num_labels, dropout, init_std=getattr(config, "initializer_range", None) or 0.02
        )
        self.hidden_size: int = config.hidden_size
        self.num_layers: int = config.num_hidden_layers  # = len(hidden_states_per_layer(...))

    def _encode(self, input_ids, attention_mask, token_type_ids=None, output_hidden_states=False):
        kwargs = self._traits.inputs(self.backbone, input_ids, attention_mask, token_type_ids)
        return self.backbone(**kwargs, output_hidden_states=output_hidden_states, return_dict=True)

    def _select(self, states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(batch, len, hidden) -> (batch, hidden) by the family's token rule (no pooler)."""
        if self.pooling == "mean":
            m = attention_mask.to(states.dtype).unsqueeze(-1)
            return (states * m).sum(1) / m.sum(1).clamp(min=1.0)
        if self.pooling == "last":
            # last position whose mask is 1: the final real token under right or left padding
            pos = torch.arange(states.shape[1], device=states.device)
            last = (attention_mask.long() * (pos + 1)).argmax(dim=1)
            return states[torch.arange(states.shape[0], device=states.device), last]
        return states[:, 0]  # [CLS]

    def pooled(self, input_ids, attention_mask, token_type_ids=None) -> torch.Tensor:
        """The sentence vector the head reads, (batch, hidden)."""
        out = self._encode(input_ids, attention_mask, token_type_ids)
        if self.pooling == "pooler":
            return out.pooler_output
        return self._select(out.last_hidden_state, attention_mask)

    def forward(self, input_ids, attention_mask, token_type_ids=None, labels=None) -> SequenceClassifierOutput:
        """logits (batch, num_labels), and with `labels` the mean cross-entropy as `loss` (what
        zhbench.fit trains on)."""
        logits = self.head(self.pooled(input_ids, attention_mask, token_type_ids))
        loss = None if labels is None else F.cross_entropy(logits, labels)
        return SequenceClassifierOutput(loss=loss, logits=logits)

    def hidden_states_per_layer(self, input_ids, attention_mask, token_type_ids=None) -> list[torch.Tensor]:
        """The token states (batch, len, hidden) after each transformer layer (embedding output
        excluded), for FastBERT's per-layer student classifiers. T5's last entry has its final
        RMSNorm applied, the earlier ones do not (pre-LN stack)."""
        return list(self._encode(input_ids, attention_mask, token_type_ids, output_hidden_states=True).hidden_states[1:])


def logits_of(output) -> torch.Tensor:
    """The logits of a classifier call: SequenceClassifier (and its int8 form) returns an output
    with `.logits`; the TextCNN student and an ONNX session return the tensor itself."""
    return output if isinstance(output, torch.Tensor) else output.logits


class LogitsOnly(nn.Module):
    """(input_ids, attention_mask) -> logits tensor: what ONNX export traces."""

    def __init__(self, classifier: nn.Module):
        super().__init__()
        self.classifier = classifier

    def forward(self, input_ids, attention_mask):
        return logits_of(self.classifier(input_ids, attention_mask))


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of distinct parameters (ALBERT's shared layer counts once)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)

"""BERT+CRF character tagger: backbone -> dropout -> linear emissions -> linear-chain CRF.

Input layout (what zhbench.ner builds): `[CLS] c1 .. cn [SEP] [PAD] ..`, with `char_mask` marking
c1..cn. The CRF runs over the characters only: the emissions drop position 0 ([CLS]) and the mask
turns off [SEP] and padding. torchcrf needs the first mask column on, which holds as long as every
row has at least one character (the readers reject empty texts).

The CRF transition scores and the emission layer are "the head": they start from scratch even
when the backbone is pretrained, so zhbench.ner gives them their own, larger learning rate.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torchcrf import CRF
from transformers import PreTrainedModel

from zhbench.io import BadInputError, atomic_dir, read_json, write_json
from zhbench.models.backbones import FAMILIES, family_of

HEAD_FILE = "crf_head.safetensors"
META_FILE = "zhbench.json"


class CrfTagger(nn.Module):
    def __init__(self, backbone: PreTrainedModel, family: str, num_tags: int, dropout: float = 0.1):
        super().__init__()
        self.family = family
        self._traits = family_of(family)
        self.num_tags = num_tags
        self.dropout_p = dropout
        self.backbone = backbone
        self.dropout = nn.Dropout(dropout)
        self.emission = nn.Linear(backbone.config.hidden_size, num_tags)
        nn.init.normal_(self.emission.weight, std=getattr(backbone.config, "initializer_range", None) or 0.02)
        nn.init.zeros_(self.emission.bias)
        self.crf = CRF(num_tags, batch_first=True)

    def head_parameters(self) -> list[nn.Parameter]:
        return list(self.emission.parameters()) + list(self.crf.parameters())

    def emissions(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, char_mask: torch.Tensor,
                  token_type_ids: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(emissions (batch, len - 1, num_tags), CRF mask, positions): the scores of each row's
        characters, left-aligned in character order, then of its other positions (masked off).

        Where the characters sit depends on the family's framing ([CLS] first; XLNet's special
        tokens last and padding on the left), so they are gathered, not assumed. Every framing has
        at least one special token, so len - 1 slots hold every character."""
        kwargs = self._traits.inputs(self.backbone, input_ids, attention_mask, token_type_ids)
        out = self.backbone(**kwargs, return_dict=True)
        is_char = char_mask.bool()
        counts = is_char.sum(1)
        if not bool((counts > 0).all()):
            raise ValueError("every row needs at least one character (CRF mask must start on)")
        positions = torch.argsort((~is_char).to(torch.int8), dim=1, stable=True)[:, : input_ids.shape[1] - 1]
        states = out.last_hidden_state.gather(1, positions[:, :, None].expand(-1, -1, out.last_hidden_state.shape[-1]))
        mask = torch.arange(positions.shape[1], device=positions.device)[None, :] < counts[:, None]
        return self.emission(self.dropout(states)), mask, positions

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, char_mask: torch.Tensor,
                tags: torch.Tensor, token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        """Negative log-likelihood of the gold tags, mean over the batch (what zhbench.fit trains).

        char_mask and tags are aligned with input_ids; only the positions char_mask marks are tagged."""
        em, mask, positions = self.emissions(input_ids, attention_mask, char_mask, token_type_ids)
        return -self.crf(em, tags.gather(1, positions), mask=mask, reduction="mean")

    @torch.no_grad()
    def decode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, char_mask: torch.Tensor,
               tags: torch.Tensor | None = None, token_type_ids: torch.Tensor | None = None
               ) -> tuple[list[list[int]], torch.Tensor | None]:
        """Viterbi tag ids per row (one per character), and the per-row NLL when gold tags are given."""
        em, mask, positions = self.emissions(input_ids, attention_mask, char_mask, token_type_ids)
        nll = None if tags is None else -self.crf(em, tags.gather(1, positions), mask=mask, reduction="none")
        return self.crf.decode(em, mask=mask), nll


def save_tagger(model: CrfTagger, out_dir: str | os.PathLike, extra: dict[str, Any] | None = None,
                files: dict[str, bytes] | None = None, encoder=None) -> None:
    """Write `out_dir` atomically: backbone (config.json + model.safetensors), crf_head.safetensors,
    zhbench.json (family, num_tags, dropout, extra), the tokenizer of `encoder` (ner.VocabCharEncoder
    or ner.CheckpointCharEncoder; its record goes into extra.encoder) and any `files` (name -> bytes)."""
    from safetensors.torch import save_file

    extra = dict(extra or {})
    with atomic_dir(out_dir) as tmp:
        if encoder is not None:
            extra["encoder"] = encoder.save(tmp)
        model.backbone.save_pretrained(tmp)
        head = {f"emission.{k}": v for k, v in model.emission.state_dict().items()}
        head |= {f"crf.{k}": v for k, v in model.crf.state_dict().items()}
        save_file({k: v.detach().cpu().contiguous() for k, v in head.items()}, str(tmp / HEAD_FILE),
                  metadata={"format": "pt"})
        write_json(tmp / META_FILE, {"family": model.family, "num_tags": model.num_tags,
                                     "dropout": model.dropout_p, "extra": extra or {}})
        for name, data in (files or {}).items():
            (tmp / name).write_bytes(data)


def load_tagger(model_dir: str | os.PathLike) -> tuple[CrfTagger, dict[str, Any]]:
    """Inverse of save_tagger: (model in eval mode, extra)."""
    from safetensors.torch import load_file

    model_dir = Path(model_dir)
    for f in (META_FILE, HEAD_FILE, "config.json", "model.safetensors"):
        if not (model_dir / f).is_file():
            raise BadInputError(model_dir / f, None, "expected a file written by save_tagger; it is missing")
    meta = read_json(model_dir / META_FILE)
    if meta.get("family") not in FAMILIES:
        raise BadInputError(model_dir / META_FILE, None, f"unknown backbone family {meta.get('family')!r}")
    backbone = FAMILIES[meta["family"]].model_class.from_pretrained(str(model_dir), local_files_only=True,
                                                                  use_safetensors=True)
    model = CrfTagger(backbone, meta["family"], int(meta["num_tags"]), float(meta["dropout"]))
    state = load_file(str(model_dir / HEAD_FILE))
    model.emission.load_state_dict({k[len("emission."):]: v for k, v in state.items() if k.startswith("emission.")})
    model.crf.load_state_dict({k[len("crf."):]: v for k, v in state.items() if k.startswith("crf.")})
    return model.eval(), meta.get("extra", {})

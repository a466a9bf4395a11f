"""TextCNN student (Kim 2014), the write-up's section 6 distillation student.

embedding (300) -> parallel convolutions of widths 2, 3, 4 with 512 feature maps each -> ReLU ->
max over time -> concat (1536) -> dropout 0.5 -> linear -> logits.

The write-up writes each filter as Conv2d(1, 512, (k, 300)) over the embedded sentence as a one-channel
image; Conv1d(300, 512, k) over the embedding channels is the same operation (same weights, same
outputs) without the unsqueeze/squeeze.

Vocabulary: the teacher's tokenizer.json (same tokens, same ids, [PAD]=0), so the distill TSV is read
with the teacher's tokenizer and no second vocabulary stage is needed; the student dir carries its own
copy. Inputs are padded to a fixed max_len: max-over-time then sees the same positions whatever the
batch, so a title's prediction never depends on its batch mates.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from zhbench.io import BadInputError, atomic_dir, read_json, write_json

WEIGHTS_FILE = "model.safetensors"
META_FILE = "zhbench.json"


@dataclass
class TextCNNConfig:
    vocab_size: int
    num_labels: int
    embedding_dim: int = 300                 # write-up: 300
    filter_sizes: list[int] = field(default_factory=lambda: [2, 3, 4])  # write-up: (2, 3, 4)
    num_filters: int = 512                   # feature maps per width; write-up: 512 -> 3 x 512 = 1536
    dropout: float = 0.5                     # write-up: 0.5
    pad_id: int = 0                          # [PAD] in every zhbench vocabulary


class TextCNN(nn.Module):
    def __init__(self, cfg: TextCNNConfig):
        super().__init__()
        self.config = cfg
        self.num_labels = cfg.num_labels
        self.embedding = nn.Embedding(cfg.vocab_size, cfg.embedding_dim, padding_idx=cfg.pad_id)
        self.convs = nn.ModuleList(nn.Conv1d(cfg.embedding_dim, cfg.num_filters, k) for k in cfg.filter_sizes)
        self.dropout = nn.Dropout(cfg.dropout)
        self.fc = nn.Linear(cfg.num_filters * len(cfg.filter_sizes), cfg.num_labels)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """logits (batch, num_labels). attention_mask is accepted for interface parity and unused:
        [PAD] embeds to zeros (padding_idx), as in the write-up."""
        widest = max(self.config.filter_sizes)
        if input_ids.shape[1] < widest:  # a title shorter than the widest filter: pad it up
            input_ids = F.pad(input_ids, (0, widest - input_ids.shape[1]), value=self.config.pad_id)
        x = self.embedding(input_ids).transpose(1, 2)  # (batch, emb, len)
        pooled = [F.relu(conv(x)).amax(dim=2) for conv in self.convs]
        return self.fc(self.dropout(torch.cat(pooled, dim=1)))


def save_textcnn(model: TextCNN, out_dir: str | os.PathLike, extra: dict[str, Any] | None = None,
                 tokenizer_file: str | os.PathLike | None = None) -> None:
    """Write model.safetensors + zhbench.json (kind "textcnn", config, extra) [+ tokenizer.json] atomically."""
    import shutil

    from safetensors.torch import save_file

    with atomic_dir(out_dir) as tmp:
        state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        save_file(state, str(tmp / WEIGHTS_FILE), metadata={"format": "pt"})
        write_json(tmp / META_FILE, {"kind": "textcnn", "config": asdict(model.config), "extra": extra or {}})
        if tokenizer_file is not None:
            shutil.copyfile(tokenizer_file, tmp / "tokenizer.json")


def load_textcnn(model_dir: str | os.PathLike) -> tuple[TextCNN, dict[str, Any]]:
    """Inverse of save_textcnn: (model in eval mode, extra). Reads safetensors only."""
    from safetensors.torch import load_file

    model_dir = Path(model_dir)
    for f in (META_FILE, WEIGHTS_FILE):
        if not (model_dir / f).is_file():
            raise BadInputError(model_dir / f, None, "expected a file written by save_textcnn; it is missing")
    meta = read_json(model_dir / META_FILE)
    if meta.get("kind") != "textcnn":
        raise BadInputError(model_dir / META_FILE, None, f"expected kind 'textcnn', found {meta.get('kind')!r}")
    model = TextCNN(TextCNNConfig(**meta["config"]))
    model.load_state_dict(load_file(str(model_dir / WEIGHTS_FILE)), strict=True)
    return model.eval(), meta.get("extra", {})


def load_predictor(model_dir: Path, labels: list[str] | None):
    """predict.py loader for kind "textcnn": the student dir with its tokenizer.json."""
    from zhbench.encoders import VocabEncoder
    from zhbench.predictors import BackbonePredictor, labels_from

    model, extra = load_textcnn(model_dir)
    max_len = int(extra["max_len"])
    labels = labels_from(extra, labels, model_dir)
    if model.num_labels != len(labels):
        raise ValueError(f"{model_dir}: the student has {model.num_labels} outputs, but there are {len(labels)} label names")
    encoder = VocabEncoder(model_dir / "tokenizer.json", str(extra["granularity"]))
    predictor = BackbonePredictor(model, encoder, labels, str(extra["granularity"]), max_len)
    return predictor, {"name": f"{extra['granularity']}/textcnn", "type": "textcnn", "max_len": max_len}

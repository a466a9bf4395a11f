"""FastBERT (Liu et al. 2020, arXiv:2004.02178): self-distilled early exit on a trained classifier.

- Backbone and final ("teacher") classifier: the fine-tuned SequenceClassifier, frozen.
- Student classifiers: one after each transformer layer but the last (the last layer's classifier is
  the teacher's own pooler + head). Each is the paper's student (its reference code's
  FastBERTClassifier): FC(H -> c) -> tanh -> self-attention (c, 2 heads) over the layer's token
  states -> first token -> FC(c -> c) -> tanh -> FC(c -> N), c = `student_hidden` (the paper's 128).
  Only the first token's attention output is read, so only its query is computed (the same numbers
  as full self-attention, for a fraction of the cost). Attending over all tokens matters: a student
  on layer 1's [CLS] state alone was 4 points less accurate than this one on the default profile,
  because after one layer [CLS] has gathered little of the title.
- Self-distillation (the paper's stage 1, unlabeled data): every student learns the teacher's
  distribution, loss = sum over layers of KL(p_student || p_teacher), the paper's direction
  (eq. 5; `kl="forward"` gives the usual KL(p_teacher || p_student)).
- Inference: layer by layer; after layer i (< L) the student's normalised entropy
  Uncertainty = -sum p log p / log N is compared with `speed`; a sample whose uncertainty is below
  `speed` exits with that student's prediction, the others run the next layer. speed 0 never exits
  early (the full model); speed >= 1 always exits after layer 1. Inside a batch each sample exits on
  its own: finished rows leave the batch, so the remaining layers run on fewer rows (at batch 1 this
  is exactly the paper's per-record early exit).

Only the BERT family (bert, roberta, macbert, mengzi: BertModel, embeddings + encoder.layer[i] +
pooler) is supported; the others' layer stacks differ (ALBERT shares one layer, XLNet/T5 use relative
attention, ...) and raise a clear error.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

FASTBERT_FAMILIES = ("bert", "roberta", "macbert", "mengzi")
STUDENTS_FILE = "fastbert_students.safetensors"


class FastBertUnsupportedError(ValueError):
    pass


def normalised_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Entropy of softmax(logits) / log(num_labels), per row, in [0, 1]."""
    logp = F.log_softmax(logits.float(), dim=-1)
    ent = -(logp.exp() * logp).sum(-1)
    return (ent / math.log(logits.shape[-1])).clamp(0.0, 1.0)


class StudentClassifier(nn.Module):
    def __init__(self, hidden_size: int, num_labels: int, student_hidden: int = 128, heads: int = 2):
        super().__init__()
        self.narrow = nn.Linear(hidden_size, student_hidden)
        self.attention = nn.MultiheadAttention(student_hidden, heads, batch_first=True)
        self.dense = nn.Linear(student_hidden, student_hidden)
        self.out = nn.Linear(student_hidden, num_labels)

    def forward(self, states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """states (batch, len, hidden), attention_mask (batch, len) 1 = real token -> logits."""
        x = torch.tanh(self.narrow(states))
        first, _ = self.attention(x[:, :1], x, x, key_padding_mask=attention_mask == 0, need_weights=False)
        return self.out(torch.tanh(self.dense(first[:, 0])))


@dataclass
class ExitResult:
    logits: torch.Tensor       # (batch, num_labels): the logits of the classifier each row exited at
    exit_layer: torch.Tensor   # (batch,) 1-based layer each row exited after


class FastBert(nn.Module):
    def __init__(self, teacher: nn.Module, student_hidden: int = 128, student_heads: int = 2):
        super().__init__()
        if getattr(teacher, "family", None) not in FASTBERT_FAMILIES:
            raise FastBertUnsupportedError(
                f"backbone family {getattr(teacher, 'family', None)!r} is not supported for FastBERT; "
                f"supported: {', '.join(FASTBERT_FAMILIES)} (BertModel layer stack)")
        self.teacher = teacher
        self.num_layers = teacher.num_layers
        self.num_labels = teacher.num_labels
        self.student_hidden, self.student_heads = student_hidden, student_heads
        self.students = nn.ModuleList(
            StudentClassifier(teacher.hidden_size, teacher.num_labels, student_hidden, student_heads)
            for _ in range(self.num_layers - 1))
        for p in self.teacher.parameters():  # stage 1: backbone and final classifier frozen
            p.requires_grad_(False)
        self.kl = "paper"

    # --- training: all layers at once -------------------------------------------------------------
    def all_layer_logits(self, input_ids, attention_mask) -> tuple[list[torch.Tensor], torch.Tensor]:
        """(student logits per layer 1..L-1, teacher logits), from one pass of the frozen backbone."""
        with torch.no_grad():
            self.teacher.eval()
            states = self.teacher.hidden_states_per_layer(input_ids, attention_mask)
            teacher_logits = self.teacher.head(self.teacher.backbone.pooler(states[-1]))
        return [s(h, attention_mask) for s, h in zip(self.students, states[:-1])], teacher_logits

    def forward(self, input_ids, attention_mask) -> torch.Tensor:
        """Stage-1 training loss (what zhbench.fit trains): the students' KL to the teacher, in the
        direction of `self.kl`."""
        return self.distill_loss(input_ids, attention_mask, self.kl)

    def distill_loss(self, input_ids, attention_mask, kl: str = "paper") -> torch.Tensor:
        students, teacher = self.all_layer_logits(input_ids, attention_mask)
        log_t = F.log_softmax(teacher, dim=-1)
        loss = 0.0
        for s in students:
            log_s = F.log_softmax(s, dim=-1)
            if kl == "paper":  # KL(p_s || p_t)
                loss = loss + (log_s.exp() * (log_s - log_t)).sum(-1).mean()
            else:  # KL(p_t || p_s)
                loss = loss + F.kl_div(log_s, log_t, reduction="batchmean", log_target=True)
        return loss

    # --- inference: real early exit ----------------------------------------------------------------
    @torch.inference_mode()
    def early_exit(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, speed: float) -> ExitResult:
        bert = self.teacher.backbone
        n = input_ids.shape[0]
        out_logits = torch.zeros(n, self.num_labels)
        exit_layer = torch.zeros(n, dtype=torch.long)
        hidden = bert.embeddings(input_ids=input_ids, token_type_ids=torch.zeros_like(input_ids))
        # the mask in the form this transformers version's attention wants (the same call BertModel makes)
        mask, _ = bert._create_attention_masks(attention_mask=attention_mask, encoder_attention_mask=None,
                                               embedding_output=hidden, encoder_hidden_states=None,
                                               past_key_values=None)
        active = torch.arange(n)
        for i, layer in enumerate(bert.encoder.layer):
            hidden = layer(hidden, mask)
            if isinstance(hidden, tuple):  # older transformers return (hidden,)
                hidden = hidden[0]
            if i == self.num_layers - 1:
                logits = self.teacher.head(bert.pooler(hidden))
                out_logits[active] = logits.float()
                exit_layer[active] = i + 1
                break
            if speed <= 0.0:  # nobody can exit: skip the students, this is the plain full model
                continue
            logits = self.students[i](hidden, attention_mask)
            done = (normalised_entropy(logits) < speed) if speed < 1.0 else torch.ones(len(active), dtype=torch.bool)
            if done.any():
                out_logits[active[done]] = logits[done].float()
                exit_layer[active[done]] = i + 1
                keep = ~done
                active, hidden, attention_mask = active[keep], hidden[keep], attention_mask[keep]
                if mask is not None and torch.is_tensor(mask):
                    mask = mask[keep]
                if len(active) == 0:
                    break
        return ExitResult(out_logits, exit_layer)

    def flops(self, seq_len: int) -> dict[str, float]:
        """Analytic multiply-add FLOPs (x2) per sample: one transformer layer, one student, the teacher
        classifier (pooler + head). Embedding lookups, LayerNorm, softmax are left out."""
        c = self.teacher.backbone.config
        h, inter, n, s = c.hidden_size, c.intermediate_size, seq_len, self.student_hidden
        layer = 2 * n * (4 * h * h + 2 * h * inter) + 2 * 2 * n * n * h  # QKVO + FFN + QK^T and AV
        # narrow FC and K, V over every token; Q, output, FC and the label FC for the first token
        # only; its attention scores and weighted sum
        student = 2 * (n * (h * s + 2 * s * s) + 3 * s * s + s * self.num_labels + 2 * n * s)
        head = 2 * (h * h + h * self.num_labels)
        return {"layer": float(layer), "student": float(student), "teacher_head": float(head)}

    def flops_ratio(self, exit_layer: torch.Tensor, seq_len: int, students_run: bool = True) -> float:
        """FLOPs actually spent / FLOPs of the full model, over a set of exit layers. Every layer a
        sample passes runs its student too (students_run), except at speed 0 where none is run."""
        f = self.flops(seq_len)
        L = self.num_layers
        full = L * f["layer"] + f["teacher_head"]
        e = exit_layer.double()
        spent = e * f["layer"] + torch.clamp(e, max=L - 1) * f["student"] * float(students_run) + (e == L).double() * f["teacher_head"]
        return float(spent.mean() / full)


# --- saving --------------------------------------------------------------------------------------

def save_fastbert(model: FastBert, out_dir: str | os.PathLike, extra: dict[str, Any],
                  tokenizer_dir: str | os.PathLike | None = None) -> None:
    """The teacher checkpoint (save_classifier layout) + the students, zhbench.json kind "fastbert",
    and the teacher's tokenizer files from `tokenizer_dir`."""
    from safetensors.torch import save_file

    from zhbench.encoders import copy_tokenizer
    from zhbench.io import atomic_dir, read_json, write_json
    from zhbench.models.backbones import META_FILE, write_classifier

    with atomic_dir(out_dir) as tmp:
        write_classifier(model.teacher, tmp, extra)
        state = {k: v.detach().contiguous() for k, v in model.students.state_dict().items()}
        save_file(state, str(tmp / STUDENTS_FILE), metadata={"format": "pt"})
        meta = read_json(tmp / META_FILE)
        meta.update(kind="fastbert", fastbert={"student_hidden": model.student_hidden,
                                               "student_heads": model.student_heads})
        write_json(tmp / META_FILE, meta)
        if tokenizer_dir is not None:
            copy_tokenizer(tokenizer_dir, tmp)


def load_fastbert(model_dir: str | os.PathLike) -> tuple[FastBert, dict[str, Any]]:
    from safetensors.torch import load_file

    from zhbench.io import read_json
    from zhbench.models.backbones import META_FILE, load_classifier

    model_dir = Path(model_dir)
    teacher, extra = load_classifier(model_dir)
    meta = read_json(model_dir / META_FILE)
    shape = meta.get("fastbert", {})
    model = FastBert(teacher, int(shape.get("student_hidden", 128)), int(shape.get("student_heads", 2)))
    model.students.load_state_dict(load_file(str(model_dir / STUDENTS_FILE)), strict=True)
    return model.eval(), extra


# --- stage 1 self-distillation and the speed sweep ---------------------------------------------------

@dataclass
class FastBertTrainConfig:
    epochs: int = 1             # paper: a few epochs of stage 1; the students are tiny and learn fast
    batch_size: int = 64
    lr: float = 2e-4            # Adam on the student classifiers only (paper: 2e-5 for the whole stack)
    kl: str = "paper"           # "paper": KL(p_student || p_teacher) (eq. 5), "forward": KL(p_teacher || p_student)
    max_steps: int | None = None
    seed: int = 42
    threads: int = 1
    device: str = "cpu"         # auto | cpu | cuda | mps
    precision: str = "fp32"     # auto | fp32 | bf16 | fp16

    @classmethod
    def from_dict(cls, d: dict) -> "FastBertTrainConfig":
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown fastbert train settings {sorted(unknown)}; expected a subset of {sorted(cls.__dataclass_fields__)}")
        return cls(**d)


def self_distill(model: FastBert, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                 cfg: FastBertTrainConfig, progress: bool = True):
    """Train the student classifiers (backbone and teacher head frozen) through zhbench.fit, with
    the paper's plain Adam at a constant rate. No labels are read: the teacher's own distribution
    is the target (unlabeled data works too). Returns fit's FitResult."""
    from zhbench.fit import FitSettings, TensorRows, fit

    model.kl = cfg.kl
    settings = FitSettings.from_dict({
        "epochs": cfg.epochs, "batch_size": cfg.batch_size, "lr": cfg.lr, "optimizer": "adam", "schedule": "constant",
        "weight_decay": 0.0, "warmup_ratio": 0.0, "grad_clip": 0.0, "max_steps": cfg.max_steps, "seed": cfg.seed,
        "threads": cfg.threads, "device": cfg.device, "precision": cfg.precision}, "params fastbert.train")
    return fit(model, TensorRows(input_ids=input_ids, attention_mask=attention_mask), settings, progress=progress,
               desc="fastbert stage 1")


def evaluate_speed(model: FastBert, input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor,
                   speed: float, batch_size: int = 64) -> dict[str, Any]:
    """Quality of one speed (deterministic): accuracy, average exit layer, exit histogram, FLOPs ratio."""
    logits, exits = [], []
    for s in range(0, len(input_ids), batch_size):
        r = model.early_exit(input_ids[s:s + batch_size], attention_mask[s:s + batch_size], speed)
        logits.append(r.logits)
        exits.append(r.exit_layer)
    logits, exits = torch.cat(logits), torch.cat(exits)
    return {
        "speed": speed,
        "accuracy": float((logits.argmax(1) == labels).float().mean()),
        "avg_exit_layer": float(exits.double().mean()),
        "exit_layer_counts": {str(i): int((exits == i).sum()) for i in range(1, model.num_layers + 1)},
        "flops_ratio": model.flops_ratio(exits, input_ids.shape[1], students_run=speed > 0.0),
        "predictions": logits.argmax(1),
    }


def time_per_record(model: FastBert, input_ids: torch.Tensor, attention_mask: torch.Tensor, speeds: list[float],
                    max_records: int = 200, repeats: int = 3) -> dict[float, float]:
    """Seconds per record at batch 1 (the paper's time_per_record) for each speed, over the first
    `max_records` rows, each trimmed to its own length (no padding, as one request would arrive).
    The speeds take turns, `repeats` passes each, and each keeps its best pass
    (`runtime.fastest_interleaved`), so the speed-up ratios compare like with like."""
    from zhbench.runtime import fastest_interleaved

    n = min(len(input_ids), max_records)
    rows = [(input_ids[i:i + 1, :k], attention_mask[i:i + 1, :k])
            for i, k in enumerate(attention_mask[:n].sum(1).tolist())]

    def one_pass(speed: float):
        for ids, mask in rows:
            model.early_exit(ids, mask, speed)

    for speed in speeds:  # warm-up
        model.early_exit(*rows[0], float(speed))
    best = fastest_interleaved({float(s): (lambda r, s=float(s): one_pass(s)) for s in speeds}, repeats)
    return {speed: t / n for speed, t in best.items()}

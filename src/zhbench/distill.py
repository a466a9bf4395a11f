"""Knowledge distillation: the teacher's logits as a TSV, and the student's KD objective.

Distill TSV (`{train,dev,test}_distill.tsv`), one row per row of the processed split, same order:

    tokens<TAB>gold_label_id<TAB>logit_0<TAB>...<TAB>logit_{C-1}

- no header line: it has the shape of the processed splits (`tokens<TAB>label_id`) plus C columns,
  so `cut -f1,2` of it is the split again; the number of labels C is checked against labels.txt
  whenever it is read (column count), which is what a header would have told.
- logits are the teacher's raw (pre-softmax) outputs written with "%.6f": fixed decimals, so two runs
  on the same machine and thread count give byte-identical files (the teacher runs in eval mode over
  file-order batches, fixed-length padding, no sampling).
- written once by the preprocess side (`workflow/scripts/distill_tsv.py`) and reused by every student.

Student loss (Hinton et al. 2015): alpha * CE(student, gold) + (1 - alpha) * T^2 * KL(p_teacher^T || p_student^T),
where p^T = softmax(logits / T); the T^2 keeps the soft-target gradients on the scale of the hard ones.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from transformers.modeling_outputs import SequenceClassifierOutput

from zhbench.fit import Evaluation, FitResult, FitSettings, TensorRows, fit
from zhbench.io import BadInputError, atomic_path, read_json

log = logging.getLogger(__name__)

LOGIT_FORMAT = "%.6f"
STUDENT_GRANULARITY = "char"  # the TextCNN student reads the project's char tokens


class TeacherError(ValueError):
    """The teacher checkpoint is missing or does not fit the data (labels, logit columns)."""


# --------------------------------------------------------------------------------------------------
# Teacher -> distill TSV


def load_teacher(teacher_dir: str | os.PathLike, labels: Sequence[str]):
    """(teacher classifier in eval mode, extra), checked against the dataset's label names."""
    from zhbench.models.backbones import META_FILE, load_classifier

    teacher_dir = Path(teacher_dir)
    if not (teacher_dir / META_FILE).is_file() or not (teacher_dir / "tokenizer.json").is_file():
        raise TeacherError(f"teacher checkpoint {teacher_dir}: not found (expected a trained backbone dir with "
                           f"{META_FILE} and tokenizer.json; run the train_backbone stage first)")
    try:
        model, extra = load_classifier(teacher_dir)
    except BadInputError as e:
        raise TeacherError(f"teacher checkpoint {teacher_dir}: incomplete ({e})") from e
    check_label_set(teacher_dir, model.num_labels, extra.get("labels"), labels)
    if "max_len" not in extra:
        raise TeacherError(f"teacher checkpoint {teacher_dir}: zhbench.json extra.max_len missing")
    return model, extra


def check_label_set(where: Any, n_outputs: int, teacher_labels: Sequence[str] | None, labels: Sequence[str]) -> None:
    if n_outputs != len(labels) or (teacher_labels and list(teacher_labels) != list(labels)):
        raise TeacherError(
            f"teacher {where}: label set does not match the data: the teacher has {n_outputs} outputs"
            + (f" ({list(teacher_labels)})" if teacher_labels else "")
            + f", labels.txt has {len(labels)} ({list(labels)})")


@torch.inference_mode()
def teacher_logits(teacher: nn.Module, encoder, split_file: str | os.PathLike, max_len: int, num_labels: int,
                   batch_size: int = 128, progress: bool = False) -> tuple[list[int], torch.Tensor]:
    """(gold ids, logits [N, C] float32) of the teacher over a split it reads (`encoder.input_file`),
    in file order."""
    from tqdm.auto import tqdm

    from zhbench.features import encode_split
    from zhbench.models.backbones import logits_of

    feats = encode_split(encoder, split_file, max_len, num_labels, encoder.granularity)
    chunks = []
    for start in tqdm(range(0, len(feats), batch_size), desc=f"teacher {Path(split_file).name}",
                      disable=not progress, mininterval=1.0):
        batch = feats.batch(range(start, min(start + batch_size, len(feats))))
        batch.pop("labels")
        chunks.append(logits_of(teacher(**batch)).float())
    return feats.labels.tolist(), torch.cat(chunks)


def format_distill_rows(texts: Sequence[str], gold: Sequence[int], logits: torch.Tensor) -> str:
    lines = []
    for text, y, row in zip(texts, gold, logits.tolist()):
        lines.append("\t".join([text, str(int(y)), *(LOGIT_FORMAT % v for v in row)]))
    return "\n".join(lines) + "\n"


def write_distill_tsv(teacher_dir: str | os.PathLike, data_dir: str | os.PathLike, splits: Sequence[str],
                      out_files: dict[str, Path], labels: Sequence[str], batch_size: int = 128,
                      progress: bool = False) -> dict[str, Any]:
    """Run the teacher over each split and write its distill TSV; returns a small summary per split.

    The first column holds the processed char tokens (what the TextCNN student reads, whatever the
    teacher's own tokenizer is); the teacher reads its own input, row for row the same titles. A
    transformer backbone gives its logits; any other classifier (a baseline, the ensemble) its
    log-probabilities, which are logits up to a constant per row: softmax(· / T) is the same."""
    from zhbench.evaluate import read_split

    summary = {}
    for split in splits:
        texts, gold = read_split(Path(data_dir) / STUDENT_GRANULARITY / f"{split}.tsv", len(labels))
        logits = teacher_split_logits(teacher_dir, data_dir, split, labels, batch_size, progress)
        with atomic_path(out_files[split]) as tmp:
            tmp.write_text(format_distill_rows(texts, gold, logits), encoding="utf-8")
        acc = float((logits.argmax(1).numpy() == np.asarray(gold)).mean())
        sure = float(torch.softmax(logits, 1).max(1).values.mean())
        summary[split] = {"rows": len(texts), "teacher_accuracy": acc, "teacher_mean_top_probability": sure}
        log.info("distill TSV %s: %d rows, teacher accuracy %.4f, mean top probability %.4f", out_files[split],
                 len(texts), acc, sure)
    return summary


def write_transfer_tsv(teacher_dir: str | os.PathLike, data_dir: str | os.PathLike, out_file: Path,
                       labels: Sequence[str], cfg, seed: int, stopwords: frozenset[str] = frozenset(),
                       batch_size: int = 128, progress: bool = False) -> dict[str, Any]:
    """The teacher's logits over the transfer set (zhbench.transfer_set: noisy copies of the train
    titles), written as write_distill_tsv writes a split; the gold column is the source title's label,
    so its summary's teacher_accuracy is how often the teacher keeps it. Empty with copies 0."""
    import tempfile

    from zhbench.evaluate import read_split
    from zhbench.preprocess import TEXT_DIR
    from zhbench.transfer_set import SPLIT, transfer_titles, write_transfer_split

    titles, gold = read_split(Path(data_dir) / TEXT_DIR / "train.tsv", len(labels))
    titles, gold = transfer_titles(titles, gold.tolist(), cfg, seed)
    if not titles:
        with atomic_path(out_file) as tmp:
            tmp.write_text("", encoding="utf-8")
        return {"rows": 0}
    with tempfile.TemporaryDirectory(prefix="zhbench-transfer-") as scratch:
        write_transfer_split(scratch, titles, gold, stopwords)
        return write_distill_tsv(teacher_dir, scratch, [SPLIT], {SPLIT: out_file}, labels, batch_size, progress)[SPLIT]


def is_backbone_dir(model_dir: str | os.PathLike) -> bool:
    """A fine-tuned transformer classifier (save_classifier's dir, no other kind)."""
    from zhbench.models.backbones import META_FILE

    meta = Path(model_dir) / META_FILE
    return meta.is_file() and "kind" not in read_json(meta)


def teacher_split_logits(teacher_dir, data_dir, split: str, labels: Sequence[str], batch_size: int = 128,
                         progress: bool = False) -> torch.Tensor:
    """[N, C] float32 teacher scores of one processed split, in file order."""
    from zhbench.evaluate import read_split

    if is_backbone_dir(teacher_dir):
        from zhbench.encoders import load_encoder

        teacher, extra = load_teacher(teacher_dir, labels)
        encoder = load_encoder(teacher_dir, extra)
        _, logits = teacher_logits(teacher, encoder, encoder.input_file(data_dir, split), int(extra["max_len"]),
                                   len(labels), batch_size, progress)
        return logits
    from zhbench.predict import ModelLoadError, load_predictor
    from zhbench.predictors import TextClassifier

    try:
        predictor, _ = load_predictor(teacher_dir, list(labels))
    except ModelLoadError as err:
        raise TeacherError(f"teacher {teacher_dir}: {err}") from err
    check_label_set(teacher_dir, len(predictor.labels), predictor.labels, labels)
    from tqdm.auto import tqdm

    titles, _ = read_split(Path(data_dir) / "text" / f"{split}.tsv", len(labels))
    classifier = TextClassifier(predictor)
    # Chunks of a multiple of every predictor's own batch size: the same batches as one call.
    chunk = 4096
    probs = np.concatenate([classifier.predict_proba(titles[s:s + chunk])
                            for s in tqdm(range(0, len(titles), chunk), desc=f"teacher {split}",
                                          disable=not progress, mininterval=1.0)])
    return torch.from_numpy(np.log(np.clip(probs, 1e-12, None))).float()


@dataclass
class DistillSplit:
    texts: list[str]
    labels: torch.Tensor          # int64 [N]
    teacher_logits: torch.Tensor  # float32 [N, C]


def read_distill_tsv(path: str | os.PathLike, num_labels: int, allow_empty: bool = False) -> DistillSplit:
    """Read and check a distill TSV; a row with the wrong number of logit columns is a label-set
    mismatch. `allow_empty`: the transfer TSV of a run without a transfer set."""
    path = Path(path)
    if not path.is_file():
        raise BadInputError(path, None, "distill TSV not found; run the distill_tsv stage first")
    texts, labels, logits = [], [], []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            parts = line.rstrip("\n").split("\t")
            if len(parts) != 2 + num_labels:
                raise TeacherError(
                    f"{path}:{lineno}: expected tokens, gold label and {num_labels} teacher logits "
                    f"({2 + num_labels} columns, one per label in labels.txt), found {len(parts)} columns; "
                    "the distill TSV was written by a teacher with a different label set")
            try:
                y = int(parts[1])
                row = [float(v) for v in parts[2:]]
            except ValueError:
                raise BadInputError(path, lineno, f"expected an integer label and float logits, found {parts[1:4]!r}...") from None
            if not 0 <= y < num_labels:
                raise BadInputError(path, lineno, f"label must be in 0..{num_labels - 1}, found {y}")
            texts.append(parts[0])
            labels.append(y)
            logits.append(row)
    if not texts and not allow_empty:
        raise BadInputError(path, None, "expected at least one row, found none")
    return DistillSplit(texts, torch.tensor(labels, dtype=torch.long),
                        torch.tensor(logits, dtype=torch.float32).reshape(len(texts), num_labels))


def encode_texts(tokenizer_file: str | os.PathLike, texts: Sequence[str], max_len: int) -> torch.Tensor:
    """input_ids [N, max_len], encoded as features.encode_split does (truncate, pad with [PAD]=0)."""
    from zhbench.features import PAD_ID
    from zhbench.text.vocab import load_tokenizer

    tok = load_tokenizer(tokenizer_file)
    tok.enable_truncation(max_length=max_len)
    tok.enable_padding(pad_id=PAD_ID, pad_token="[PAD]", length=max_len)
    return torch.tensor([e.ids for e in tok.encode_batch(list(texts))], dtype=torch.long)


# --------------------------------------------------------------------------------------------------
# Student training


def kd_loss(student: torch.Tensor, teacher: torch.Tensor, gold: torch.Tensor, alpha: float,
            temperature: float, transfer: torch.Tensor | None = None) -> torch.Tensor:
    """Batch mean of alpha * CE(gold) + (1 - alpha) * T^2 * KL(softmax(teacher/T) || softmax(student/T))
    per row; rows flagged in `transfer` (the transfer set's noisy copies) take T^2 * KL alone."""
    t = temperature
    hard = F.cross_entropy(student, gold, reduction="none")
    soft = t * t * F.kl_div(F.log_softmax(student / t, dim=1), F.log_softmax(teacher / t, dim=1),
                            reduction="none", log_target=True).sum(1)
    per_row = alpha * hard + (1.0 - alpha) * soft
    if transfer is not None:
        per_row = torch.where(transfer, soft, per_row)
    return per_row.mean()


@dataclass
class StudentConfig:
    alpha: float = 0.5          # weight of the gold-label CE; 1 - alpha goes to the teacher's soft targets
    temperature: float = 2.0    # softmax temperature T of the soft targets
    epochs: int = 5             # paper: 50 (with early stop); params.yaml sets the CPU default
    batch_size: int = 128       # write-up: 128
    lr: float = 1e-3            # Adam, as the write-up's TextCNN
    max_len: int = 32           # tokens incl. [CLS]/[SEP] (the teacher's framing)
    eval_every: int = 100       # steps between dev evaluations
    patience_steps: int = 1000  # stop after this many steps without a better dev loss (write-up: 1000)
    max_steps: int | None = None
    seed: int = 42
    threads: int = 1
    device: str = "cpu"         # auto | cpu | cuda | mps
    precision: str = "fp32"     # auto | fp32 | bf16 | fp16
    grad_accum_steps: int = 1

    @classmethod
    def from_dict(cls, d: dict) -> "StudentConfig":
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown student settings {sorted(unknown)}; expected a subset of {sorted(cls.__dataclass_fields__)}")
        return cls(**d)

    def fit_settings(self) -> FitSettings:
        """The write-up's TextCNN recipe: plain Adam at a constant rate, no clipping; early stop on dev."""
        return FitSettings.from_dict({
            "epochs": self.epochs, "batch_size": self.batch_size, "lr": self.lr, "optimizer": "adam",
            "schedule": "constant", "weight_decay": 0.0, "warmup_ratio": 0.0, "grad_clip": 0.0,
            "eval_every": self.eval_every, "patience_steps": self.patience_steps, "max_steps": self.max_steps,
            "seed": self.seed, "threads": self.threads, "device": self.device, "precision": self.precision,
            "grad_accum_steps": self.grad_accum_steps}, "params distill.train")


class Distillation(nn.Module):
    """The student under knowledge distillation: forward(**batch) returns the KD loss against the
    teacher's logits in the batch, and the student's logits."""

    def __init__(self, student: nn.Module, alpha: float, temperature: float):
        super().__init__()
        self.student, self.alpha, self.temperature = student, alpha, temperature

    def forward(self, input_ids, labels, teacher_logits, transfer=None) -> SequenceClassifierOutput:
        logits = self.student(input_ids)
        loss = kd_loss(logits, teacher_logits, labels, self.alpha, self.temperature, transfer)
        return SequenceClassifierOutput(loss=loss, logits=logits)



@torch.inference_mode()
def predict_student(model: nn.Module, input_ids: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    was = model.training
    model.eval()
    out = torch.cat([model(input_ids[s:s + batch_size]).float() for s in range(0, len(input_ids), batch_size)])
    model.train(was)
    return out


def train_student(model: nn.Module, train_ids: torch.Tensor, train: DistillSplit, dev_ids: torch.Tensor,
                  dev: DistillSplit, cfg: StudentConfig, progress: bool = True,
                  transfer_ids: torch.Tensor | None = None, transfer: DistillSplit | None = None) -> FitResult:
    """Train in place on the KD loss through zhbench.fit, over the train rows and the transfer set's
    (if any); early stop on dev CE (gold); the best dev state is restored."""
    def evaluate(distillation: nn.Module) -> Evaluation:
        dev_logits = predict_student(distillation.student, dev_ids)
        return Evaluation(float(F.cross_entropy(dev_logits, dev.labels)),
                          float((dev_logits.argmax(1) == dev.labels).float().mean()))

    n_transfer = 0 if transfer is None else len(transfer.texts)
    if n_transfer:
        data = TensorRows(input_ids=torch.cat([train_ids, transfer_ids]),
                          labels=torch.cat([train.labels, transfer.labels]),
                          teacher_logits=torch.cat([train.teacher_logits, transfer.teacher_logits]),
                          transfer=torch.arange(len(train_ids) + n_transfer) >= len(train_ids))
    else:
        data = TensorRows(input_ids=train_ids, labels=train.labels, teacher_logits=train.teacher_logits)
    return fit(Distillation(model, cfg.alpha, cfg.temperature), data, cfg.fit_settings(), evaluate=evaluate,
               progress=progress, desc="student")

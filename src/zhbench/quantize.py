"""int8 dynamic quantization of a trained backbone classifier: PyTorch and ONNX Runtime.

Two int8 versions of the same fp32 checkpoint (a `save_classifier` dir):

- torch int8: `torch.ao.quantization.quantize_dynamic` on every nn.Linear (the write-up's 5.3.3: weights
  int8, activations quantized on the fly; embeddings and LayerNorm stay fp32, which is why BERT-base
  only shrinks 390 MB -> 145 MB).
  Note: torch.ao quantize_dynamic is deprecated in torch 2.13 in favour of torchao. We keep it on
  purpose: torchao's int8 dynamic path measured only 1.8x on this CPU, against 4.9x for torch.ao
  (fp32 1916 ms -> int8 389 ms per batch of 64 x 32 tokens, 2 threads, BERT-base shape); ONNX
  Runtime int8 ran the same batch in 366 ms at 98 MiB. When torch.ao is removed, switch to torchao
  (or ONNX Runtime only) and re-measure.
- ORT int8: the fp32 model exported to ONNX, then `onnxruntime.quantization.quantize_dynamic`, which
  also quantizes the embedding tables (Gather), so the file shrinks ~4x.

Saving is safe: the int8 state_dict is written with torch.save and read back with
`torch.load(weights_only=True)` (a restricted unpickler that only rebuilds tensors, including
quantized ones, never arbitrary objects) into a skeleton that is built from config.json and quantized
the same way. ONNX files hold data only.

Layout of a torch int8 dir: config.json, int8_state_dict.pt, zhbench.json (family, num_labels,
dropout, kind "backbone_int8", extra copied from the fp32 checkpoint), tokenizer.json.
Layout of an ONNX dir: model.onnx (fp32), model_int8.onnx, zhbench.json (kind "onnx_int8"),
tokenizer.json.
"""
from __future__ import annotations

import logging
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from zhbench.encoders import copy_tokenizer, load_encoder
from zhbench.io import BadInputError, atomic_dir, read_json, write_json
from zhbench.models.backbones import LogitsOnly, logits_of
from zhbench.predictors import BackbonePredictor, labels_from

log = logging.getLogger(__name__)

INT8_FILE = "int8_state_dict.pt"
ONNX_FP32 = "model.onnx"
ONNX_INT8 = "model_int8.onnx"
META_FILE = "zhbench.json"


# --------------------------------------------------------------------------------------------------
# torch int8


def quantize_torch(model: nn.Module) -> nn.Module:
    """A dynamically quantized (int8 weights, nn.Linear only) copy of `model`, in eval mode."""
    import copy

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # see the module docstring
        return torch.ao.quantization.quantize_dynamic(
            copy.deepcopy(model).eval(), {nn.Linear}, dtype=torch.qint8)


def save_torch_int8(qmodel: nn.Module, fp32_dir: str | os.PathLike, out_dir: str | os.PathLike) -> None:
    """Write a torch int8 dir (see module docstring) for the quantized `qmodel` of checkpoint `fp32_dir`."""
    fp32_dir = Path(fp32_dir)
    meta = read_json(fp32_dir / META_FILE)
    with atomic_dir(out_dir) as tmp:
        shutil.copyfile(fp32_dir / "config.json", tmp / "config.json")
        torch.save(qmodel.state_dict(), tmp / INT8_FILE)
        write_json(tmp / META_FILE, {**meta, "kind": "backbone_int8", "quantization": "torch.ao dynamic qint8 nn.Linear"})
        copy_tokenizer(fp32_dir, tmp)


def load_torch_int8(model_dir: str | os.PathLike) -> tuple[nn.Module, dict[str, Any]]:
    """Inverse of save_torch_int8: (quantized SequenceClassifier in eval mode, extra)."""
    from zhbench.models.backbones import SequenceClassifier, family_of

    model_dir = Path(model_dir)
    for f in (META_FILE, "config.json", INT8_FILE):
        if not (model_dir / f).is_file():
            raise BadInputError(model_dir / f, None, "expected a file written by save_torch_int8; it is missing")
    meta = read_json(model_dir / META_FILE)
    fam = family_of(meta["family"])
    config = fam.config_class.from_json_file(str(model_dir / "config.json"))
    skeleton = SequenceClassifier(fam.model_class(config), meta["family"], int(meta["num_labels"]),
                                  float(meta["dropout"]))
    qmodel = quantize_torch(skeleton)
    state = torch.load(model_dir / INT8_FILE, weights_only=True, map_location="cpu")
    qmodel.load_state_dict(state, strict=True)
    return qmodel.eval(), meta.get("extra", {})


# --------------------------------------------------------------------------------------------------
# ONNX Runtime int8


def export_onnx(model: nn.Module, path: str | os.PathLike, max_len: int) -> None:
    """Export the fp32 classifier (input_ids, attention_mask) -> logits with dynamic batch and length.

    The example batch holds a padded row on purpose: with an all-ones mask the tracer may fold the
    mask away (transformers skips it), and the graph would then ignore padding.
    The legacy TorchScript exporter (dynamo=False) is used: it is fast, needs no onnxscript
    rewriting, and the graph it gives matches PyTorch to 1e-7 on padded and unpadded batches.
    """
    length = max(4, min(max_len, 16))
    ids = torch.full((2, length), 5, dtype=torch.long)
    mask = torch.ones_like(ids)
    mask[1, length // 2:] = 0
    ids[1, length // 2:] = 0
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            LogitsOnly(model).eval(), (ids, mask), str(path), input_names=["input_ids", "attention_mask"],
            output_names=["logits"], opset_version=17, dynamo=False,
            dynamic_axes={"input_ids": {0: "batch", 1: "length"}, "attention_mask": {0: "batch", 1: "length"},
                          "logits": {0: "batch"}},
        )


def quantize_onnx(fp32_path: str | os.PathLike, int8_path: str | os.PathLike) -> None:
    """ORT dynamic int8 (MatMul and the embedding Gathers), per-tensor QInt8 weights."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    logging.getLogger().disabled, was = True, logging.getLogger().disabled  # ORT warns via the root logger
    try:
        quantize_dynamic(str(fp32_path), str(int8_path), weight_type=QuantType.QInt8)
    finally:
        logging.getLogger().disabled = was


class OrtClassifier:
    """An ONNX model as a callable (input_ids, attention_mask) -> torch logits, like the torch models
    (so `predictors.BackbonePredictor` can serve it unchanged)."""

    def __init__(self, path: str | os.PathLike, threads: int | None = None):
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = int(threads or torch.get_num_threads())
        so.inter_op_num_threads = 1
        self.path = str(path)
        self.session = ort.InferenceSession(self.path, so, providers=["CPUExecutionProvider"])

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **_unused) -> torch.Tensor:
        # The graph takes (input_ids, attention_mask): segment ids of single titles are all 0 for
        # every family quantized here, the backbone's default.
        out = self.session.run(None, {"input_ids": input_ids.numpy().astype(np.int64),
                                      "attention_mask": attention_mask.numpy().astype(np.int64)})[0]
        return torch.from_numpy(out)

    def eval(self) -> "OrtClassifier":
        return self


def save_onnx(model: nn.Module, fp32_dir: str | os.PathLike, out_dir: str | os.PathLike, max_len: int) -> None:
    """Write an ONNX dir: fp32 export, its int8 quantization, metadata and tokenizer."""
    fp32_dir = Path(fp32_dir)
    meta = read_json(fp32_dir / META_FILE)
    with atomic_dir(out_dir) as tmp:
        export_onnx(model, tmp / ONNX_FP32, max_len)
        quantize_onnx(tmp / ONNX_FP32, tmp / ONNX_INT8)
        write_json(tmp / META_FILE, {**meta, "kind": "onnx_int8",
                                     "quantization": "onnxruntime quantize_dynamic QInt8 (MatMul, Gather)"})
        copy_tokenizer(fp32_dir, tmp)


# --------------------------------------------------------------------------------------------------
# Measuring


def state_dict_bytes(model: nn.Module) -> int:
    """Bytes of torch.save(model.state_dict()): the write-up's bert.pt vs bert_quantize.pt comparison.
    torch.save stores tensors uncompressed, so the size depends on shapes and dtypes only."""
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "m.pt"
        torch.save(model.state_dict(), p)
        return p.stat().st_size


def onnx_bytes(model: nn.Module, max_len: int) -> tuple[int, int]:
    """(fp32, int8) ONNX file sizes of `model`, exported and quantized in a scratch dir."""
    with tempfile.TemporaryDirectory() as d:
        fp32, int8 = Path(d) / ONNX_FP32, Path(d) / ONNX_INT8
        export_onnx(model, fp32, max_len)
        quantize_onnx(fp32, int8)
        return fp32.stat().st_size, int8.stat().st_size


@torch.inference_mode()
def predict_logits(model: Callable, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                   batch_size: int = 128) -> torch.Tensor:
    """Logits of every row in order (torch module or OrtClassifier)."""
    chunks = []
    for start in range(0, len(input_ids), batch_size):
        chunks.append(logits_of(model(input_ids[start:start + batch_size], attention_mask[start:start + batch_size])).float())
    return torch.cat(chunks)


def time_per_sample(model: Callable, input_ids: torch.Tensor, attention_mask: torch.Tensor, batch_size: int,
                    min_samples: int = 64, max_seconds: float = 20.0) -> float:
    """Seconds per sample of one model at `batch_size` (see compare_latency)."""
    return compare_latency({"model": model}, input_ids, attention_mask, (batch_size,), min_samples,
                           max_seconds)[f"batch_{batch_size}"]["model"]


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    return float((logits.argmax(dim=1) == labels).float().mean())


# --------------------------------------------------------------------------------------------------
# The whole comparison for one model (what the quantize stage and the benchmark call)


def build_base_classifier(backbone: str, num_labels: int, max_len: int, seed: int = 42) -> nn.Module:
    """The paper-size (base) config with random weights: real shapes and sizes, not trained."""
    from zhbench.models.backbones import SequenceClassifier, build_backbone

    torch.manual_seed(seed)
    return SequenceClassifier(build_backbone(backbone, "base", None, max_len), backbone, num_labels).eval()


@torch.inference_mode()
def compare_latency(variants: dict[str, Callable], input_ids: torch.Tensor, attention_mask: torch.Tensor,
                    batch_sizes: Sequence[int] = (1, 64), min_samples: int = 64,
                    max_seconds: float = 20.0, min_rounds: int = 5) -> dict[str, Any]:
    """Seconds per sample of each variant at each batch size, on the same rows (cycling).

    Side by side (`runtime.fastest_interleaved`): each round times one batch of every variant in
    turn, and each variant keeps its fastest batch. Rounds go on until `min_rounds` rounds and
    `min_samples` rows per variant are done, or `max_seconds` have passed (after at least 2 rounds).
    One untimed warm-up batch per variant.
    """
    from zhbench.runtime import fastest_interleaved

    n = len(input_ids)
    out: dict[str, Any] = {}
    for bs in batch_sizes:
        def batch(i):
            idx = torch.arange(i * bs, (i + 1) * bs) % n
            return input_ids[idx], attention_mask[idx]
        for fn in variants.values():
            fn(*batch(0))
        # round r times batch r + 1 (batch 0 was the warm-up) with every variant
        tasks = {name: (lambda r, fn=fn: fn(*batch(r + 1))) for name, fn in variants.items()}
        best = fastest_interleaved(tasks, max(min_rounds, -(-min_samples // bs)), max_seconds)
        row = {name: t / bs for name, t in best.items()}
        if "fp32" in row:
            row.update({f"{k}_speedup": row["fp32"] / v for k, v in list(row.items()) if k != "fp32"})
        out[f"batch_{bs}"] = row
    return out


def random_inputs(vocab_size: int, n: int, length: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Title-like random token rows (for latency of the untrained base config)."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, vocab_size, (n, length), generator=g)
    ids[:, 0], ids[:, -1] = 2, 3  # [CLS] ... [SEP]
    return ids, torch.ones_like(ids)


# --------------------------------------------------------------------------------------------------
# Predictor loaders (named in zhbench.predict.LAZY_LOADERS)


# Dynamic int8 quantizes each Linear's input with one scale per input tensor, i.e. per batch: a row's
# logits then depend on the rows batched with it (measured: served in batches of 64 instead of 128,
# 2 of 10,000 test titles changed label). One row at a time makes a title's answer a function of the
# title alone, so the quantize stage scores, and the server answers, with this batch size.
INT8_BATCH_SIZE = 1


def load_int8_predictor(model_dir: Path, labels: list[str] | None):
    """predict.py loader for kind "backbone_int8"."""
    model, extra = load_torch_int8(model_dir)
    max_len = int(extra["max_len"])
    predictor = BackbonePredictor(model, load_encoder(model_dir, extra), labels_from(extra, labels, model_dir),
                                  str(extra["granularity"]), max_len, batch_size=INT8_BATCH_SIZE)
    return predictor, {"name": f"{extra['granularity']}/{extra.get('backbone', model_dir.name)}-int8",
                       "type": "backbone_int8", "max_len": max_len}


def load_onnx_predictor(model_dir: Path, labels: list[str] | None):
    """predict.py loader for kind "onnx_int8" (serves model_int8.onnx with ONNX Runtime)."""
    meta = read_json(model_dir / META_FILE)
    extra = meta.get("extra", {})
    max_len = int(extra["max_len"])
    predictor = BackbonePredictor(OrtClassifier(model_dir / ONNX_INT8), load_encoder(model_dir, extra),
                                  labels_from(extra, labels, model_dir), str(extra["granularity"]), max_len,
                                  batch_size=INT8_BATCH_SIZE)
    return predictor, {"name": f"{extra['granularity']}/{extra.get('backbone', model_dir.name)}-ort-int8",
                       "type": "onnx_int8", "max_len": max_len}

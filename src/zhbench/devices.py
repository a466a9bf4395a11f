"""Which device and which precision a run uses, and what the machine is, for every timing record.

`device: auto|cpu|cuda|mps` and `precision: auto|fp32|bf16|fp16` are params settings. `auto` takes
what the hardware does natively: the GPU when there is one (under torchrun, `cuda:LOCAL_RANK`),
bf16 where it is native (CUDA GPUs that support it; CPUs with avx512_bf16 or AMX), fp32 elsewhere.
A CPU without native bf16 emulates it, which is slower than fp32, so `auto` never picks it there.
"""
from __future__ import annotations

import os
import platform
from functools import lru_cache
from pathlib import Path

DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
# The instruction sets that decide CPU speed and numerics here: bf16 and int8 dot products.
CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "avx_vnni", "amx_bf16", "amx_tile")


@lru_cache(maxsize=1)
def cpu_info() -> dict:
    """The CPU model and which of CPU_FLAGS it has (Linux /proc/cpuinfo; elsewhere the model only)."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
            if flags and model:
                break
    except OSError:
        pass
    return {"model": model, "flags": {f: f in flags for f in CPU_FLAGS}}


def cpu_has_native_bf16() -> bool:
    flags = cpu_info()["flags"]
    return flags["avx512_bf16"] or flags["amx_bf16"]


def resolve_device(setting: str = "auto"):
    """A torch.device for `setting`; an unavailable one is a clear error, not a silent CPU run."""
    import torch

    if setting not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, got {setting!r}")
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if setting == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank)
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if setting == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError("device: cuda, but torch sees no CUDA GPU (CPU-only torch build, or no driver); "
                               "use device: auto or cpu")
        return torch.device("cuda", local_rank)
    if setting == "mps" and not torch.backends.mps.is_available():
        raise RuntimeError("device: mps, but this torch has no MPS backend; use device: auto or cpu")
    return torch.device(setting)


def resolve_precision(setting: str, device) -> str:
    """fp32 | bf16 | fp16 for `setting` on `device`."""
    import torch

    if setting not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {setting!r}")
    if setting != "auto":
        if setting == "fp16" and device.type == "cpu":
            raise ValueError("precision: fp16 needs a GPU (no fp16 GradScaler path on CPU here); use bf16 or fp32")
        return setting
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if device.type == "cpu":
        return "bf16" if cpu_has_native_bf16() else "fp32"
    return "fp32"


def autocast_dtype(precision: str):
    import torch

    return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)


def device_name(device=None) -> str:
    """What a timing was measured on: the GPU's name, else the CPU model."""
    try:
        import torch

        if (device is None or getattr(device, "type", device) == "cuda") and torch.cuda.is_available():
            return torch.cuda.get_device_name(device if device is not None else 0)
    except ImportError:
        pass
    return cpu_info()["model"]

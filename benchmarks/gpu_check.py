"""GPU check of the training loop (zhbench.fit) on a CUDA device: placement, mixed precision and
speed, measured side by side in one run. No data or checkpoint is needed: token ids are drawn
from a seeded generator, so the run fits the device machine's bare image (torch + transformers).

For BERT at mini and base size (the write-up's bert-base-chinese shape, 21,128-token vocabulary),
batch 128 x 32 tokens (write-up 003: batch 128, titles padded to 32), it trains `--steps` optimizer steps per
precision (fp32, bf16, fp16 with GradScaler) on the GPU, and the same steps in fp32 on the CPU
for the small model, then reports per setting: step time, tokens/s, the loss before and after,
and model FLOPs utilisation (6 x parameters x tokens per step, over the GPU's dense bf16 peak).

    PYTHONPATH=src python benchmarks/gpu_check.py --out gpu_check.json

Checks (exit 1 when one fails): every run's loss is finite and falls; bf16 and fp16 first-step
losses agree with fp32 within 2 %; the CPU and GPU fp32 first-step losses agree within 1e-3.
"""
from __future__ import annotations

import argparse
import json
import math
import sys

import torch

from zhbench.devices import cpu_info, device_name
from zhbench.fit import FitSettings, TensorRows, fit
from zhbench.models.backbones import SequenceClassifier, build_backbone

VOCAB = 21128  # bert-base-chinese
# Dense bf16 peaks (TFLOP/s) of the GPUs this project has been lent, for the utilisation figure.
PEAK_BF16_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0}


def rows(n: int, length: int, num_labels: int, seed: int) -> TensorRows:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, VOCAB, (n, length), generator=g)
    # a learnable label: which tenth of the vocabulary the first token falls in
    labels = (ids[:, 1] * num_labels // VOCAB).clamp(max=num_labels - 1)
    return TensorRows(input_ids=ids, attention_mask=torch.ones_like(ids), labels=labels)


def run_one(size: str, device: str, precision: str, steps: int, batch: int, length: int, seed: int) -> dict:
    torch.manual_seed(seed)
    model = SequenceClassifier(build_backbone("bert", size, vocab_size=VOCAB, max_positions=length), "bert", 10)
    params = sum(p.numel() for p in model.parameters())
    cfg = FitSettings(epochs=10**6, max_steps=steps, batch_size=batch, lr=1e-4, seed=seed, threads=1 if device == "cpu"
                      else 4, device=device, precision=precision, warmup_ratio=0.0)
    losses: list[float] = []
    hook = model.register_forward_hook(lambda m, i, o: losses.append(float(o.loss.detach().float())))
    result = fit(model, rows(steps * batch, length, 10, seed), cfg, progress=False, desc=f"{size} {precision}")
    hook.remove()
    t = result.timing
    tokens = batch * length
    flops = 6 * params * tokens
    peak = next((v for k, v in PEAK_BF16_TFLOPS.items() if k in t["device"]), None)
    return {"size": size, "device": t["device"], "precision": t["precision"], "parameters": params,
            "steps": result.steps, "step_s": t["train_step_time"], "tokens_per_s": tokens / t["train_step_time"],
            "mfu_vs_bf16_peak": flops / t["train_step_time"] / (peak * 1e12) if peak and device == "cuda" else None,
            "first_loss": losses[0], "last_loss": losses[-1], "peak_memory_gib":
                torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else None}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=30, help="optimizer steps per setting (the first is warm-up)")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--length", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="JSON file for the results")
    a = p.parse_args()
    if not torch.cuda.is_available():
        print("error: no CUDA device visible to torch; this check needs a GPU", file=sys.stderr)
        return 2
    runs = []
    for size in ("mini", "base"):
        for precision in ("fp32", "bf16", "fp16"):
            torch.cuda.reset_peak_memory_stats()
            runs.append(run_one(size, "cuda", precision, a.steps, a.batch, a.length, a.seed))
            print(json.dumps(runs[-1]), flush=True)
    cpu = run_one("mini", "cpu", "fp32", 3, a.batch, a.length, a.seed)
    runs.append(cpu)
    failures = []
    for r in runs:
        if not (math.isfinite(r["last_loss"]) and r["last_loss"] < r["first_loss"]) and r["steps"] > 3:
            failures.append(f"{r['size']} {r['precision']} on {r['device']}: loss {r['first_loss']} -> {r['last_loss']}")
    for size in ("mini", "base"):
        fp32 = next(r for r in runs if r["size"] == size and r["precision"] == "fp32" and r is not cpu)
        for r in runs:
            if r["size"] == size and r["precision"] in ("bf16", "fp16") and \
                    abs(r["first_loss"] - fp32["first_loss"]) > 0.02 * fp32["first_loss"]:
                failures.append(f"{size} {r['precision']} first loss {r['first_loss']} vs fp32 {fp32['first_loss']}")
    gpu_mini = next(r for r in runs if r["size"] == "mini" and r["precision"] == "fp32")
    if abs(cpu["first_loss"] - gpu_mini["first_loss"]) > 1e-3:
        failures.append(f"mini fp32 first loss: CPU {cpu['first_loss']} vs GPU {gpu_mini['first_loss']}")
    speedups = {f"{r['size']}_{r['precision']}_vs_fp32": next(
        f["step_s"] for f in runs if f["size"] == r["size"] and f["precision"] == "fp32" and f is not cpu) / r["step_s"]
        for r in runs if r is not cpu and r["precision"] != "fp32"}
    result = {"gpu": device_name(torch.device("cuda")), "cpu": cpu_info()["model"], "torch": torch.__version__,
              "batch": a.batch, "length": a.length, "runs": runs, "speedups": speedups, "failures": failures}
    with open(a.out, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=2)
    print(json.dumps({"speedups": speedups, "failures": failures}, indent=2))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

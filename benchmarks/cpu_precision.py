"""bf16 autocast against fp32 on this machine's CPU, for the training step (zhbench.fit), measured
side by side in one run: mini BERT at batch 64 x 32 and bert-base at batch 16 x 32 (the pair the
GPU issue measured on an avx512_bf16 EPYC: 2.0x and 2.7x), one thread, random token ids.

    PYTHONPATH=src python benchmarks/cpu_precision.py --out benchmarks/results/cpu_precision.json

Whether bf16 pays depends on the CPU: `zhbench.devices` picks it (`precision: auto`) only where
the CPU has native bf16 (avx512_bf16 or AMX). The result names the CPU and its flags.
"""
from __future__ import annotations

import argparse
import json
import sys

from gpu_check import run_one  # same model, rows and fit settings as the GPU check

from zhbench.devices import cpu_info

SETTINGS = (("mini", 64, 6), ("base", 16, 3))  # size, batch, optimizer steps (the first is warm-up)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--length", type=int, default=32)
    p.add_argument("--out", required=True, help="JSON file for the results")
    a = p.parse_args()
    runs, ratios = [], {}
    for size, batch, steps in SETTINGS:
        fp32, bf16 = (run_one(size, "cpu", precision, steps, batch, a.length, seed=0) for precision in ("fp32", "bf16"))
        runs += [fp32, bf16]
        ratios[f"{size}_bf16_speedup"] = fp32["step_s"] / bf16["step_s"]
        print(f"{size} batch {batch}x{a.length}: fp32 {1000 * fp32['step_s']:.0f} ms/step, "
              f"bf16 {1000 * bf16['step_s']:.0f} ms/step ({ratios[f'{size}_bf16_speedup']:.2f}x)", flush=True)
    with open(a.out, "w", encoding="utf-8") as f:
        json.dump({"cpu": cpu_info(), "length": a.length, "runs": runs, "bf16_speedup": ratios}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Load test of the prediction service: latency, throughput, errors, and served == offline predictions.

For each model: start `zhbench serve` in a subprocess on a free loopback port, check that every
title's served prediction equals the offline one (the same Predictor called in this process), then
send a bounded load at each concurrency (default 400 requests at 1 and at 8 concurrent clients,
each level also capped in seconds) and print p50/p99 latency, requests/s, errors and mismatches.
With --check-evaluation it also serves the whole raw test split and compares with what the pipeline's
evaluation recorded: the same confusion matrix (baselines, backbones) or the same test accuracy
(quantized models, whose stage keeps accuracies only).

    python benchmarks/serve_load.py --check-evaluation --model fasttext_char --model quantized/char/bert_onnx
    python benchmarks/serve_load.py --model-dir /tmp/toy_ft --labels /tmp/labels.txt --titles titles.txt

Titles: one per line, or `title<TAB>label` lines (the raw dataset files); default the first
--n-titles lines of data/raw/thucnews10/test.txt. Exit status 1 if any request failed or any
served prediction differed from the offline one (the targets are zero and zero).
Load goes to 127.0.0.1 only.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from zhbench.data.thucnews import read_examples, read_labels
from zhbench.predict import load_predictor
from zhbench.predictors import TextClassifier
from zhbench.serve import metrics_file_for, resolve_model_dir

HOST = "127.0.0.1"


@dataclass
class LevelResult:
    model: str
    concurrency: int
    texts_per_request: int
    requests: int
    errors: int
    mismatches: int
    p50_ms: float
    p99_ms: float
    requests_per_s: float
    seconds: float


def read_titles(path: Path, n: int) -> list[str]:
    titles = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            title = line.rstrip("\n").split("\t")[0].strip()
            if title:
                titles.append(title)
            if len(titles) == n:
                break
    if not titles:
        raise SystemExit(f"{path}: no titles found (expected one title, or title<TAB>label, per line)")
    return titles


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def start_server(serve_args: list[str], timeout: float) -> tuple[subprocess.Popen, str]:
    port = free_port()
    cmd = [sys.executable, "-m", "zhbench.serve", "--host", HOST, "--port", str(port), "--log-level", "warning", *serve_args]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://{HOST}:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}:\n{proc.stderr.read()}")
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.TransportError:
            time.sleep(0.2)
    stop_server(proc)
    raise SystemExit(f"server did not answer /health within {timeout:.0f} s")


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def check_parity(url: str, titles: list[str], offline: np.ndarray, offline_p: np.ndarray, chunk: int) -> tuple[int, float]:
    """(titles whose served label differs from offline, largest probability difference)."""
    mismatches, max_diff = 0, 0.0
    with httpx.Client(base_url=url, timeout=60) as client:
        for start in range(0, len(titles), chunk):
            r = client.post("/predict", json={"texts": titles[start:start + chunk], "top_k": 1})
            r.raise_for_status()
            for i, p in enumerate(r.json()["predictions"], start):
                mismatches += int(p["label_id"] != offline[i])
                max_diff = max(max_diff, abs(p["probability"] - offline_p[i]))
    return mismatches, float(max_diff)


async def run_level(url: str, titles: list[str], offline: np.ndarray, requests: int, concurrency: int,
                    batch: int, max_seconds: float) -> tuple[list[float], int, int, float]:
    """Send up to `requests` requests from `concurrency` clients; stop issuing after max_seconds."""
    latencies: list[float] = []
    errors = mismatches = 0
    next_request = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:
        start = time.perf_counter()
        deadline = start + max_seconds

        async def worker():
            nonlocal next_request, errors, mismatches
            while next_request < requests and time.perf_counter() < deadline:
                i = next_request
                next_request += 1
                idx = [(i * batch + j) % len(titles) for j in range(batch)]
                t0 = time.perf_counter()
                try:
                    r = await client.post("/predict", json={"texts": [titles[j] for j in idx]})
                    ok = r.status_code == 200
                except httpx.HTTPError:
                    ok = False
                latencies.append(time.perf_counter() - t0)
                if not ok:
                    errors += 1
                    continue
                served = [p["label_id"] for p in r.json()["predictions"]]
                mismatches += sum(int(s != offline[j]) for s, j in zip(served, idx))

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    return latencies, errors, mismatches, elapsed


def evaluation_reference(model_dir: Path, kind: str, models_root: str, task: str) -> tuple[str, Any] | None:
    """What the pipeline's own evaluation recorded for this model on the full test split:
    ("confusion", matrix) from its evaluate stage's metrics JSON, or ("accuracy", value) for a
    quantized model (the quantize stage keeps accuracies only, per variant, in
    metrics/<task>/quantize/<granularity>/<backbone>.json); None when there is no record."""
    metrics = metrics_file_for(model_dir, models_root, task)
    if metrics is not None:
        return "confusion", json.loads(metrics.read_text(encoding="utf-8"))["test"]["confusion_matrix"]
    variant = {"backbone_int8": "torch_int8", "onnx_int8": "ort_int8"}.get(kind)
    if variant is None:
        return None
    extra = json.loads((model_dir / "zhbench.json").read_text(encoding="utf-8")).get("extra", {})
    path = Path("metrics") / task / "quantize" / str(extra.get("granularity")) / f"{extra.get('backbone')}.json"
    if not path.is_file():
        return None
    return "accuracy", json.loads(path.read_text(encoding="utf-8"))["trained"]["test_accuracy"][variant]


def check_evaluation(url: str, label: str, reference: tuple[str, Any] | None, test_file: Path, num_labels: int,
                     chunk: int) -> bool:
    """Serve the whole raw test split and compare with the evaluation's record: identical confusion
    matrix (every title's label as evaluated) or identical accuracy (4 decimals, as recorded).
    Prints what it compared; False when the served predictions differ."""
    if reference is None or not test_file.is_file():
        print(f"{label}: no evaluation record to compare the served predictions with")
        return True
    examples = read_examples(test_file, num_labels).examples  # the reader preprocess used
    titles, gold = [e.text for e in examples], np.array([e.label for e in examples])
    served = []
    with httpx.Client(base_url=url, timeout=120) as client:
        for start in range(0, len(titles), chunk):
            r = client.post("/predict", json={"texts": titles[start:start + chunk], "top_k": 1})
            r.raise_for_status()
            served += [p["label_id"] for p in r.json()["predictions"]]
    kind, expected = reference
    if kind == "confusion":
        matrix = np.zeros_like(np.asarray(expected))
        np.add.at(matrix, (gold, served), 1)
        same = matrix.tolist() == expected
        print(f"{label}: served confusion matrix over {len(titles)} test titles "
              f"{'==' if same else '!='} the evaluate stage's")
        return same
    acc = round(float(np.mean(np.asarray(served) == gold)), 4)
    print(f"{label}: served test accuracy over {len(titles)} titles {acc:.4f}, quantize stage recorded {expected:.4f}")
    return acc == expected


def bench_model(label: str, serve_args: list[str], model_dir: Path, labels_file: str | None, titles: list[str],
                args: argparse.Namespace) -> tuple[list[LevelResult], int, float]:
    predictor, info = load_predictor(model_dir, read_labels(labels_file) if labels_file else None)
    clf = TextClassifier(predictor)
    probs = clf.predict_proba(titles)
    offline = np.argmax(probs, axis=1)
    offline_p = probs[np.arange(len(titles)), offline]
    proc, url = start_server(serve_args, args.startup_timeout)
    try:
        chunk = httpx.get(url + "/health").json()["limits"]["max_texts"]
        parity, max_diff = check_parity(url, titles, offline, offline_p, chunk)
        if args.check_evaluation:
            reference = evaluation_reference(model_dir, info.kind, args.models_root, args.task)
            same = check_evaluation(url, label, reference, Path("data/raw") / args.task / "test.txt",
                                    len(clf.labels), chunk)
            parity += not same
        results = []
        for c in args.concurrency:
            asyncio.run(run_level(url, titles, offline, min(20, args.requests), c, args.batch, 10))  # warm-up
            lat, errors, mism, elapsed = asyncio.run(
                run_level(url, titles, offline, args.requests, c, args.batch, args.max_seconds))
            ms = np.asarray(lat) * 1000
            results.append(LevelResult(
                model=label, concurrency=c, texts_per_request=args.batch, requests=len(lat), errors=errors,
                mismatches=mism, p50_ms=float(np.percentile(ms, 50)) if len(ms) else float("nan"),
                p99_ms=float(np.percentile(ms, 99)) if len(ms) else float("nan"),
                requests_per_s=len(lat) / elapsed if elapsed else 0.0, seconds=elapsed))
    finally:
        stop_server(proc)
    return results, parity, max_diff


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", action="append", default=[], help="model name as `zhbench serve --model` takes it (repeatable)")
    p.add_argument("--model-dir", action="append", default=[], help="a model dir given directly (repeatable)")
    p.add_argument("--task", default="thucnews10")
    p.add_argument("--models-root", default="models")
    p.add_argument("--labels", help="label names (default: data/processed/<task>/labels.txt if present)")
    p.add_argument("--titles", help="titles file (default: data/raw/<task>/test.txt)")
    p.add_argument("--n-titles", type=int, default=200, help="how many titles to use (default: 200)")
    p.add_argument("--requests", type=int, default=400, help="requests per concurrency level (default: 400)")
    p.add_argument("--concurrency", type=int, nargs="+", default=[1, 8], help="concurrent clients (default: 1 8)")
    p.add_argument("--batch", type=int, default=1, help="titles per request (default: 1)")
    p.add_argument("--max-seconds", type=float, default=60, help="stop issuing requests of a level after this (default: 60)")
    p.add_argument("--startup-timeout", type=float, default=120)
    p.add_argument("--check-evaluation", action="store_true",
                   help="also serve the whole test split and compare with the evaluation's metrics file")
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args(argv)
    if not args.model and not args.model_dir:
        p.error("give at least one --model or --model-dir")
    if args.requests < 1 or args.requests > 10_000 or min(args.concurrency) < 1 or max(args.concurrency) > 64:
        p.error("keep the load bounded: 1..10000 requests, 1..64 concurrent clients")

    titles_file = Path(args.titles or Path("data/raw") / args.task / "test.txt")
    if not titles_file.is_file():
        p.error(f"{titles_file}: titles file not found (give --titles)")
    titles = read_titles(titles_file, args.n_titles)
    labels = args.labels
    if labels is None and (Path("data/processed") / args.task / "labels.txt").is_file():
        labels = str(Path("data/processed") / args.task / "labels.txt")

    targets = [(m, resolve_model_dir(m, args.models_root, args.task)) for m in args.model]
    targets += [(Path(d).name, Path(d)) for d in args.model_dir]
    all_results, failed = [], False
    print(f"{len(titles)} titles from {titles_file}; {args.requests} requests per level, {args.batch} title(s) per request")
    header = f"{'model':<28} {'conc':>4} {'reqs':>5} {'errors':>6} {'mismatch':>8} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>8}"
    for label, model_dir in targets:
        serve_args = ["--model-dir", str(model_dir)] + (["--labels", labels] if labels else [])
        results, parity, max_diff = bench_model(label, serve_args, model_dir, labels, titles, args)
        print(f"\n{label}: served == offline on {len(titles) - parity}/{len(titles)} titles "
              f"(largest probability difference {max_diff:.2e})")
        print(header)
        for r in results:
            print(f"{r.model[-28:]:<28} {r.concurrency:>4} {r.requests:>5} {r.errors:>6} {r.mismatches:>8} "
                  f"{r.p50_ms:>8.2f} {r.p99_ms:>8.2f} {r.requests_per_s:>8.1f}")
            failed = failed or r.errors > 0 or r.mismatches > 0
        failed = failed or parity > 0
        all_results.append({"model": label, "parity_mismatches": parity, "max_probability_diff": max_diff,
                            "levels": [asdict(r) for r in results]})
    if args.json:
        Path(args.json).write_text(json.dumps(all_results, indent=2) + "\n", encoding="utf-8")
    print("\nOK: zero errors, served == offline" if not failed else "\nFAILED: errors or served != offline")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

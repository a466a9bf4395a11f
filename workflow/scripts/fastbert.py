"""Stage fastbert: self-distil per-layer student classifiers into a trained BERT-family teacher, then
sweep the early-exit `speed`.

Quality metrics JSON (deterministic): per speed, test accuracy, average exit layer, exit-layer counts
and analytic FLOPs ratio. Timing JSON: time per record at batch 1 per speed and speed-up over speed 0.
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch

from zhbench import params as P
from zhbench import stage
from zhbench.data.thucnews import read_labels
from zhbench.evaluate import write_timing
from zhbench.io import write_json
from zhbench.runtime import seed_everything, set_threads


def build_parser():
    p = stage.parser(__doc__)
    p.add_argument("--teacher", required=True, help="trained teacher checkpoint dir (BERT family) with tokenizer.json")
    p.add_argument("--data", required=True, help="processed dataset dir (labels.txt, <granularity>/{train,test}.tsv)")
    p.add_argument("--granularity", required=True, help="token granularity (char|word)")
    p.add_argument("--out", required=True, help="FastBERT model dir to write (teacher + students)")
    p.add_argument("--metrics", required=True, help="quality metrics JSON (speed sweep)")
    p.add_argument("--timing", required=True, help="timing JSON (time per record, speed-up)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return p


def run(args, params):
    from zhbench.distill import load_teacher
    from zhbench.encoders import load_encoder
    from zhbench.features import encode_split
    from zhbench.models.fastbert import (FastBert, FastBertTrainConfig, evaluate_speed, save_fastbert, self_distill,
                                         time_per_record)
    from zhbench.devices import device_name

    section = P.section(params, "fastbert")
    seed = int(P.section(params, "seed"))
    cfg = FastBertTrainConfig.from_dict({**section.get("train", {}), "seed": seed})
    seed_everything(seed)
    set_threads(cfg.threads)

    data = Path(args.data)
    labels = read_labels(data / "labels.txt")
    teacher, extra = load_teacher(args.teacher, labels)
    torch.manual_seed(seed)
    # unsupported family -> clear error
    model = FastBert(teacher, int(section.get("student_hidden", 128)), int(section.get("student_heads", 2)))
    encoder = load_encoder(args.teacher, extra)
    max_len = int(extra["max_len"])
    train, test = (encode_split(encoder, encoder.input_file(data, split), max_len, len(labels), encoder.granularity)
                   for split in ("train", "test"))
    if section.get("max_train_rows"):
        train = train.subset(range(min(len(train), int(section["max_train_rows"]))))

    stage1 = self_distill(model, train.input_ids, train.attention_mask, cfg, progress=not args.no_progress)
    save_fastbert(model, args.out, {**extra, "fastbert_train": {**cfg.__dict__}}, args.teacher)

    sweep, full = [], None
    for speed in section["speeds"]:
        r = evaluate_speed(model, test.input_ids, test.attention_mask, test.labels, float(speed))
        preds = r.pop("predictions")
        if full is None and float(speed) == 0.0:
            full = preds
        if full is not None:
            r["agreement_with_speed_0"] = float((preds == full).float().mean())
        sweep.append(r)
    seconds = time_per_record(model, test.input_ids, test.attention_mask, [float(s) for s in section["speeds"]],
                              int(section.get("timing_records", 200)))
    times = {str(s): seconds[float(s)] for s in section["speeds"]}
    for speed, r in zip(section["speeds"], sweep):
        stage.log.info("speed %s: acc %.4f, avg exit layer %.2f, flops %.3f, %.2f ms/record", speed, r["accuracy"],
                       r["avg_exit_layer"], r["flops_ratio"], 1000 * times[str(speed)])

    write_json(args.metrics, {
        "model": f"{args.granularity}/{teacher.family}-fastbert", "teacher": extra.get("backbone", teacher.family),
        "num_layers": model.num_layers, "test_rows": len(test), "stage1_final_loss": stage1.last_loss,
        "stage1_steps": stage1.steps, "sweep": sweep,
    })
    base = times.get("0.0") or times.get("0") or next(iter(times.values()))
    write_timing(args.timing, {"device": device_name(), "threads": torch.get_num_threads(),
                               "time_per_record": times, "speedup_over_speed_0": {k: base / v for k, v in times.items()}})


if __name__ == "__main__":
    sys.exit(stage.entry_point(run, build_parser)())

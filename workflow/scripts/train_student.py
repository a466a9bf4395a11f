"""Stage train_student: a TextCNN student distilled from the teacher's logits (distill TSV).

Quality metrics (zhbench.evaluate, same shape as every classifier, plus the teacher's test accuracy
from the distill TSV, parameter counts and sizes on disk); timing JSON: seconds per sample of student
and teacher at batch 1 and 64, measured in this one run.
"""
from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path

import torch

from zhbench import params as P
from zhbench import stage
from zhbench.data.thucnews import read_labels
from zhbench.evaluate import classification_report, read_split, write_evaluation, write_timing
from zhbench.runtime import seed_everything, set_threads


def build_parser():
    p = stage.parser(__doc__)
    p.add_argument("--distill", required=True, help="dir holding {train,dev,test}_distill.tsv (distill_tsv stage)")
    p.add_argument("--teacher", required=True, help="teacher checkpoint dir (tokenizer, label check, timing)")
    p.add_argument("--data", required=True, help="processed dataset dir (labels.txt, the teacher's test split)")
    p.add_argument("--vocab", required=True, help="the project's char vocabulary dir (tokenizer.json): the student's ids")
    p.add_argument("--granularity", required=True, help="token granularity (char|word)")
    p.add_argument("--out", required=True, help="student model dir to write (model.safetensors, zhbench.json, tokenizer.json)")
    p.add_argument("--metrics", required=True, help="quality metrics JSON")
    p.add_argument("--confusion-csv", required=True, help="test confusion rows (dvc plots)")
    p.add_argument("--confusion-png", required=True, help="test confusion heat map")
    p.add_argument("--timing", required=True, help="timing JSON (training time, student vs teacher latency)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return p


def dir_bytes(path: Path, names) -> int:
    return sum((path / n).stat().st_size for n in names if (path / n).is_file())


def model_bytes(model_dir: Path) -> int:
    """Bytes on disk of a model dir; for an ensemble, of its members' dirs."""
    from zhbench.ensemble import META_FILE, member_dir
    from zhbench.io import read_json

    meta = read_json(model_dir / META_FILE) if (model_dir / META_FILE).is_file() else {}
    dirs = ([member_dir(model_dir.parent, m["model"]) for m in meta["members"] if m["weight"] > 0]
            if meta.get("kind") == "ensemble" else [model_dir])
    return sum(p.stat().st_size for d in dirs for p in d.rglob("*") if p.is_file())


def served_teacher(model_dir: Path, labels: list[str]):
    """A non-transformer teacher (a baseline, the ensemble) as the service loads it."""
    from zhbench.distill import TeacherError, check_label_set
    from zhbench.predict import ModelLoadError, load_predictor
    from zhbench.predictors import TextClassifier

    try:
        predictor, _ = load_predictor(model_dir, labels)
    except ModelLoadError as err:
        raise TeacherError(f"teacher {model_dir}: {err}") from err
    check_label_set(model_dir, len(predictor.labels), predictor.labels, labels)
    return TextClassifier(predictor)


def run(args, params):
    from zhbench import distill as D
    from zhbench.models.backbones import count_parameters
    from zhbench.models.textcnn import TextCNN, TextCNNConfig, load_textcnn, save_textcnn
    from zhbench.quantize import time_per_sample
    from zhbench.devices import device_name
    from zhbench.encoders import load_encoder
    from zhbench.features import encode_split

    section = P.section(params, "distill")
    seed = int(P.section(params, "seed"))
    cfg = D.StudentConfig.from_dict({**section.get("train", {}), "alpha": section["alpha"],
                                     "temperature": section["temperature"], "seed": seed})
    seed_everything(seed)
    set_threads(cfg.threads)

    labels = read_labels(Path(args.data) / "labels.txt")
    teacher_dir = Path(args.teacher)
    backbone_teacher = D.is_backbone_dir(teacher_dir)
    if backbone_teacher:
        teacher, teacher_extra = D.load_teacher(teacher_dir, labels)  # missing / other label set -> TeacherError
    else:
        teacher, teacher_extra = served_teacher(teacher_dir, labels), {}
    # The student reads the project's char vocabulary, whatever tokenizer the teacher has.
    tokenizer_file = Path(args.vocab) / "tokenizer.json"
    splits = {s: D.read_distill_tsv(Path(args.distill) / f"{s}_distill.tsv", len(labels)) for s in ("train", "dev", "test")}
    ids = {s: D.encode_texts(tokenizer_file, d.texts, cfg.max_len) for s, d in splits.items()}
    transfer = D.read_distill_tsv(Path(args.distill) / "transfer_distill.tsv", len(labels), allow_empty=True)
    transfer_ids = D.encode_texts(tokenizer_file, transfer.texts, cfg.max_len)

    from zhbench.text.vocab import load_tokenizer

    vocab_size = load_tokenizer(tokenizer_file).get_vocab_size()
    torch.manual_seed(seed)
    student = TextCNN(TextCNNConfig(vocab_size=vocab_size, num_labels=len(labels), **section.get("student", {})))
    result = D.train_student(student, ids["train"], splits["train"], ids["dev"], splits["dev"], cfg,
                             progress=not args.no_progress, transfer_ids=transfer_ids, transfer=transfer)

    extra = {"model": "textcnn", "granularity": args.granularity, "labels": labels, "max_len": cfg.max_len,
             "teacher": teacher_extra.get("backbone", teacher_dir.name), "distill": asdict(cfg),
             "best_step": result.best_step, "steps": result.steps, "stopped_early": result.stopped_early}
    save_textcnn(student, args.out, extra, tokenizer_file)
    student, _ = load_textcnn(args.out)  # score what is on disk

    reports = {}
    for split in ("dev", "test"):
        logits = D.predict_student(student, ids[split])
        loss = float(torch.nn.functional.cross_entropy(logits, splits[split].labels))
        reports[split] = classification_report(splits[split].labels.numpy(), logits.argmax(1).numpy(), labels, loss)
    teacher_test = splits["test"].teacher_logits.argmax(1)
    n_student = count_parameters(student)
    n_teacher = count_parameters(teacher) if backbone_teacher else None  # a baseline or ensemble has no torch graph
    size_student = dir_bytes(Path(args.out), ["model.safetensors"])
    size_teacher = (dir_bytes(teacher_dir, ["model.safetensors", "head.safetensors"]) if backbone_teacher
                    else model_bytes(teacher_dir))
    write_evaluation(args.metrics, args.confusion_csv, args.confusion_png, reports, {
        "model": f"{args.granularity}/textcnn",
        "teacher": extra["teacher"],
        "teacher_test_accuracy": float((teacher_test == splits["test"].labels).float().mean()),
        "student_test_accuracy": reports["test"]["accuracy"],
        "agreement_with_teacher": float((D.predict_student(student, ids["test"]).argmax(1) == teacher_test).float().mean()),
        "parameters": {"student": n_student, "teacher": n_teacher,
                       "ratio": n_teacher / n_student if n_teacher else None},
        "size_bytes": {"student": size_student, "teacher": size_teacher, "ratio": size_teacher / size_student},
        "distill": {"alpha": cfg.alpha, "temperature": cfg.temperature, "transfer_rows": len(transfer.texts),
                    "best_step": result.best_step,
                    "steps": result.steps, "stopped_early": result.stopped_early},
    })

    # latency of both, same rows, same run; the teacher reads its own encoding (its max_len)
    timing_rows = int(section.get("timing_rows", 256))
    s_ids = ids["test"][:timing_rows]
    if backbone_teacher:
        t_encoder = load_encoder(args.teacher, teacher_extra)
        t_rows = encode_split(t_encoder, t_encoder.input_file(args.data, "test"), int(teacher_extra["max_len"]),
                              len(labels), t_encoder.granularity).subset(range(len(s_ids)))
        t_ids, t_mask = t_rows.input_ids, t_rows.attention_mask
    else:  # a served model's own path: raw titles in, its segmentation included in the time
        titles = read_split(Path(args.data) / "text" / "test.tsv", len(labels))[0][:len(s_ids)]
        t_ids = torch.arange(len(titles))[:, None]
        t_mask = torch.ones_like(t_ids)
        served = teacher
        teacher = lambda i, m: served.predict_proba([titles[j] for j in i[:, 0].tolist()])  # noqa: E731
    latency = {}
    for bs in (1, 64):
        st = time_per_sample(lambda i, m: student(i), s_ids, (s_ids != 0).long(), bs, max_seconds=10)
        te = time_per_sample(teacher, t_ids, t_mask, bs, max_seconds=10)
        latency[f"batch_{bs}"] = {"student": st, "teacher": te, "speedup": te / st}
    write_timing(args.timing, {"device": device_name(), "threads": torch.get_num_threads(),
                               "train_seconds": result.timing["train_total_time"], "train_steps": result.steps,
                               "seconds_per_sample": latency})
    stage.log.info("student test acc %.4f (teacher %s: %.4f), latency %s", reports["test"]["accuracy"],
                   extra["teacher"], float((teacher_test == splits["test"].labels).float().mean()), latency)


if __name__ == "__main__":
    sys.exit(stage.entry_point(run, build_parser)())

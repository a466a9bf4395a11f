"""`zhbench predict` and `zhbench models`: the service's predictions from the command line.

    zhbench predict --model char/bert "中国女排夺得世界杯冠军" "央行下调存款准备金率"
    echo "中国女排夺得世界杯冠军" | zhbench predict --model fasttext_char
    zhbench predict --model linear_ngram --input titles.csv --text-column title --output out.jsonl
    zhbench predict --model ner/cluener "浙商银行企业信贷部叶老桂博士"
    zhbench models

`predict` loads the model exactly as `zhbench serve` does (the same loader, checks and warm-up, the
same segmentation in front), so an answer here is the answer /predict gives, and the one the
evaluation stage scored. Each output row holds the text, the label, its probability and the top-k.
An NER model (`ner/<variant>`) answers with each text's entities instead: text, type, start, end
(end inclusive, as CLUENER counts), decoded as the evaluate_ner stage decodes them.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from pathlib import Path
from typing import Iterator

from zhbench.io import BadInputError

INPUT_FORMATS = (".txt", ".csv", ".tsv", ".jsonl")
OUTPUT_FORMATS = (".jsonl", ".csv")


def read_texts(path: str | None, text_column: str) -> list[str]:
    """The texts to classify: one per line of a .txt (or stdin), or a column of .csv/.tsv/.jsonl.
    A bad line is one error naming file and line."""
    from zhbench.data.own_files import clean_text

    if path is None:
        name, raw = "<stdin>", sys.stdin.read()
    else:
        name = path
        if Path(path).suffix not in INPUT_FORMATS:
            raise BadInputError(path, None, f"expected one of {', '.join(INPUT_FORMATS)}, found {Path(path).suffix!r}")
        raw = Path(path).read_text(encoding="utf-8-sig")
    suffix = Path(name).suffix if path else ".txt"
    texts: list[str] = []
    if suffix == ".txt":
        for lineno, line in enumerate(raw.split("\n"), start=1):
            line = line.removesuffix("\r")
            if line.strip():
                texts.append(clean_text(name, lineno, "text", line))
    elif suffix == ".jsonl":
        for lineno, line in enumerate(raw.split("\n"), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise BadInputError(name, lineno, f"expected a JSON object, cannot parse it ({err.msg})") from None
            if not isinstance(row, dict) or text_column not in row:
                raise BadInputError(name, lineno, f"expected an object with a {text_column!r} field")
            texts.append(clean_text(name, lineno, text_column, row[text_column]))
    else:
        reader = csv.DictReader(io.StringIO(raw), delimiter="\t" if suffix == ".tsv" else ",")
        if reader.fieldnames is None or text_column not in reader.fieldnames:
            raise BadInputError(name, 1, f"expected a header with a {text_column!r} column, found {reader.fieldnames}")
        for row in reader:
            texts.append(clean_text(name, reader.line_num, text_column, row[text_column]))
    if not texts:
        raise BadInputError(name, None, "expected at least one text, found none")
    return texts


def predictions(classifier, texts: list[str], k: int, batch_size: int = 64, progress: bool = True) -> Iterator[dict]:
    from tqdm.auto import tqdm

    with tqdm(total=len(texts), desc="predict", unit="text", disable=not progress, mininterval=1.0) as bar:
        for start in range(0, len(texts), batch_size):
            chunk = texts[start:start + batch_size]
            for text, p in zip(chunk, classifier.predict(chunk, k)):
                yield {"text": text, "label": p.label, "label_id": p.label_id, "probability": p.probability,
                       "top_k": [{"label": name, "label_id": i, "probability": pr} for i, name, pr in p.top_k]}
            bar.update(len(chunk))


def entity_rows(tagger, texts: list[str], batch_size: int = 64, progress: bool = True) -> Iterator[dict]:
    from tqdm.auto import tqdm

    with tqdm(total=len(texts), desc="predict ner", unit="text", disable=not progress, mininterval=1.0) as bar:
        for start in range(0, len(texts), batch_size):
            chunk = texts[start:start + batch_size]
            for text, entities in zip(chunk, tagger.entities(chunk)):
                yield {"text": text, "entities": entities}
            bar.update(len(chunk))


def write_rows(rows: list[dict], output: str | None) -> None:
    """JSON lines to stdout or a .jsonl file; a .csv gets text, label, probability and top-k as JSON
    (text and entities as JSON for an NER model)."""
    from zhbench.io import write_text

    if output is None or Path(output).suffix == ".jsonl":
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        sys.stdout.write(text) if output is None else write_text(output, text)
        return
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    if rows and "entities" in rows[0]:
        writer.writerow(["text", "entities"])
        writer.writerows([r["text"], json.dumps(r["entities"], ensure_ascii=False)] for r in rows)
    else:
        writer.writerow(["text", "label", "label_id", "probability", "top_k"])
        for r in rows:
            writer.writerow([r["text"], r["label"], r["label_id"], f"{r['probability']:.6f}",
                             json.dumps(r["top_k"], ensure_ascii=False)])
    write_text(output, buf.getvalue())


def _predict(args: argparse.Namespace) -> int:
    from zhbench.ner_predict import EntityTagger
    from zhbench.predict import ModelLoadError
    from zhbench.serve import config_from_args, load_service

    if args.output and Path(args.output).suffix not in OUTPUT_FORMATS:
        raise ValueError(f"--output {args.output}: expected a {' or '.join(OUTPUT_FORMATS)} file")
    if args.texts and args.input:
        raise ValueError("give texts as arguments or --input FILE, not both")
    texts = list(args.texts) if args.texts else read_texts(args.input, args.text_column)
    progress = args.input is not None and not args.no_progress
    args.model_dir, args.metrics, args.stopwords, args.threads, args.workers = None, None, args.stopwords, 1, 1
    args.max_texts, args.max_chars = max(1, len(texts)), max(1, max(len(t) for t in texts))
    try:
        service = load_service(config_from_args(args))
    except ModelLoadError as err:
        print(f"zhbench predict: error: {err}", file=sys.stderr)
        return 2
    if isinstance(service.model, EntityTagger):
        rows = list(entity_rows(service.model, texts, progress=progress))
    else:
        k = min(args.top_k, len(service.model.labels))
        rows = list(predictions(service.model, texts, k, progress=progress))
    write_rows(rows, args.output)
    return 0


def _models(args: argparse.Namespace) -> int:
    from zhbench.layout import configured_task

    task = args.task or configured_task()
    rows = list(trained_models(Path(args.models_root) / task, task))
    if not rows:
        print(f"no trained models under {Path(args.models_root) / task} (run the pipeline first)", file=sys.stderr)
        return 1
    header = ["model", "kind", "granularity", "size", "dev acc %", "test acc %"]
    table = [header] + [[r["model"], r["kind"], r["granularity"], r["size"], r["dev"], r["test"]] for r in rows]
    widths = [max(len(str(row[i])) for row in table) for i in range(len(header))]
    for row in table:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip())
    return 0


def trained_models(root: Path, task: str) -> Iterator[dict]:
    """Every model dir under models/<task>/ (one holding model.json or zhbench.json), with its
    size on disk and, where its evaluation ran, its dev and test accuracy."""
    from zhbench.io import read_json
    from zhbench.serve import metrics_file_for

    if not root.is_dir():
        return
    dirs = sorted({p.parent for name in ("model.json", "zhbench.json") for p in root.rglob(name)})
    for d in dirs:
        meta_file = d / "zhbench.json" if (d / "zhbench.json").is_file() else d / "model.json"
        meta = read_json(meta_file)
        extra = meta.get("extra", meta)
        kind = meta.get("kind") or meta.get("type") or "backbone"
        metrics = metrics_file_for(d, root.parent, task)
        scores = read_json(metrics) if metrics else {}
        acc = {s: f"{100 * scores[s]['accuracy']:.2f}" if isinstance(scores.get(s), dict) and "accuracy" in scores[s]
               else "—" for s in ("dev", "test")}
        size = sum(p.stat().st_size for p in d.rglob("*") if p.is_file())
        yield {"model": str(d.relative_to(root)), "kind": kind, "granularity": extra.get("granularity", "?"),
               "size": f"{size / 2**20:.1f} MiB", **acc}


def add_subparsers(sub) -> None:
    p = sub.add_parser("predict", help="classify texts with a trained model (the same answers as /predict)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("texts", nargs="*", help="texts to classify (else --input, else one text per line on stdin)")
    p.add_argument("--model", required=True, help="trained model: a baseline (fasttext_char, linear_ngram) or "
                                                  "char/<backbone>, word/<backbone>, quantized/char/bert_int8, ...; "
                                                  "ner/<variant> (cluener, pd1998-devtest) for entities")
    p.add_argument("--input", help="file of texts: .txt (one per line), .csv/.tsv (with a header) or .jsonl")
    p.add_argument("--text-column", default="text", help="the text column of a .csv/.tsv/.jsonl input (default: text)")
    p.add_argument("--output", help="write .jsonl or .csv here (default: JSON lines on stdout)")
    p.add_argument("--top-k", type=int, default=3, help="labels ranked per text (default: 3)")
    p.add_argument("--task", help="task whose models to use (default: the one params.yaml names)")
    p.add_argument("--models-root", default="models", help="pipeline models dir (default: models)")
    p.add_argument("--labels", help="label names file (default: data/processed/<task>/labels.txt)")
    p.add_argument("--stopwords", help="stop-word list, only if the word splits were made with remove_stopwords: true")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar shown for --input files")
    p.set_defaults(func=_predict)

    m = sub.add_parser("models", help="list the trained models with their kind, size and accuracy")
    m.add_argument("--task", help="task whose models to list (default: the one params.yaml names)")
    m.add_argument("--models-root", default="models", help="pipeline models dir (default: models)")
    m.set_defaults(func=_models)

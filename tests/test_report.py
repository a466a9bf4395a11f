"""The report: every section reads its numbers from metrics files, puts the reference beside them,
says what is missing, and keeps run-to-run timings inside fences the determinism check strips.

Fixture metrics are written here by the same functions the stages use (classification_report,
write_evaluation, write_json) with the key layout of a smoke run, so the tests need no pipeline run.
"""
from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest

from helpers import ROOT
from zhbench import report as R
from zhbench.evaluate import classification_report, write_evaluation
from zhbench.io import write_json, write_text

REFERENCES = ROOT / "config" / "references.yaml"
LABELS = ["finance", "realty", "sports"]
GOLD = [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2]

PARAMS = {
    "profile": "fixture",
    "data": {"variant": "thucnews10-33k"},
    "baselines": {"models": ["random_forest", "fasttext_char"]},
    "backbones": {"size": "mini", "granularities": {"char": ["bert", "albert", "roberta"], "word": ["bert"]}},
    "quantize": {"backbones": ["bert"]},
    "fastbert": {"backbones": ["bert"]},
    "ner": {"variants": ["cluener", "pd1998-devtest"]},
    "pair": {"backbones": ["albert", "bert"]},
    "distill": {"teachers": ["bert"], "alpha": 0.5, "temperature": 2.0},
    "pretrain": {"families": ["bert", "albert"], "steps": 3, "batch_size": 8, "max_len": 32},
}
PROVENANCE = {"profile": "fixture", "git_commit": "0123abcd", "python": "3.11.7",
              "packages": {"torch": "2.13.0+cpu", "matplotlib": None}}


def _predictions(n_wrong: int) -> list[int]:
    return [(y + 1) % len(LABELS) if i < n_wrong else y for i, y in enumerate(GOLD)]


def _evaluation(metrics_dir: Path, json_rel: str, figure: str, n_wrong: int, extra: dict, loss: float | None = None):
    reports = {split: classification_report(GOLD, _predictions(n_wrong + (split == "dev")), LABELS, loss=loss)
               for split in ("dev", "test")}
    path = metrics_dir / json_rel
    write_evaluation(path, path.with_name(path.stem + "_confusion.csv"), figure, reports, extra)


def make_fixture_metrics(root: Path) -> Path:
    """A small but complete metrics tree under root/metrics (figures under root/reports/figures)."""
    m, figures = root / "metrics", root / "reports" / "figures"
    t = m / "thucnews10"
    split_stats = {"rows": 12, "skipped_rows": 0, "duplicate_titles": 1,
                   "char_length": {"mean": 19.5, "p95": 25.0}, "token_length": {"word": {"mean": 10.25}},
                   "class_counts": {"finance": 4, "realty": 4, "sports": 4}}
    write_json(t / "dataset_stats.json", {"labels": LABELS, "profile": "fixture", "variant": "thucnews10-33k",
                                          "overlap": {"train-dev": 0, "train-test": 2, "dev-test": 0},
                                          "splits": {"train": split_stats, "dev": split_stats, "test": split_stats}})
    for i, model in enumerate(PARAMS["baselines"]["models"]):
        _evaluation(m, f"thucnews10/{model}.json", figures / f"confusion_{model}.png", i + 1,
                    {"model": model, "granularity": "word" if model == "random_forest" else "char",
                     "profile": "fixture", "variant": "thucnews10-33k", "args": {}})
        write_json(t / f"{model}_timing.json", {"train_seconds": 1.5, "predict_ms_per_sample": {"dev": 0.2, "test": 0.1 * (i + 1)}})
    for granularity, names in PARAMS["backbones"]["granularities"].items():
        for name in names:
            wrong = 2 if name == "albert" else (1 if granularity == "char" else 3)  # roberta == bert, as at mini size
            _evaluation(m, f"thucnews10/backbones/{granularity}/{name}.json",
                        figures / f"confusion_{granularity}_{name}.png", wrong,
                        {"model": name, "granularity": granularity, "max_len": 32, "size": "mini",
                         "parameters": 863107}, loss=0.5 + 0.1 * wrong)
            split_timing = {"samples": 12, "inference_seconds": 0.024, "inference_time_per_sample": 0.002,
                            "feature_load_seconds_uncached": 0.04, "feature_load_seconds_cached": 0.0004}
            write_json(t / f"backbones/{granularity}/{name}_timing.json",
                       {"device": "Test CPU", "threads": 1, "batch_size": 256, "dev": split_timing, "test": split_timing})
            write_json(t / f"backbones/{granularity}/{name}_train_timing.json",
                       {"device": "Test CPU", "threads": 1, "train_step_time": 0.182, "train_epoch_time": 81.0,
                        "valid_step_time": 0.0631, "valid_epoch_time": 3.0, "train_steps": 6})
            curves = t / "curves" / granularity / name
            write_text(curves / "train.csv", "step,train_loss,train_acc\n1,2.300000,0.100000\n2,2.000000,0.300000\n"
                                             "3,1.500000,0.500000\n4,1.000000,0.700000\n")
            write_text(curves / "eval.csv", "step,train_loss,train_acc,val_loss,val_acc\n"
                                            "2,2.000000,0.300000,2.100000,0.250000\n4,1.000000,0.700000,1.200000,0.600000\n")
    for family, (token, sentence, loss) in (("bert", (0.25, {"nsp_eval_acc": 0.5}, 6.5)),
                                            ("albert", (0.125, {"sop_eval_acc": 0.75}, 7.0))):
        write_json(t / f"pretrain/{family}.json", {
            "backbone": family, "objective": f"{family} objective", "steps": 3, "loss_eval": loss,
            "mlm_eval_acc": token, **sentence, "untrained": {"loss_eval": 8.0}})
        write_json(t / f"pretrain/{family}_timing.json", {"device": "Test CPU", "precision": "fp32",
                                                           "train_step_time": 0.05, "train_total_time": 2.0})
        _evaluation(m, f"thucnews10/backbones/pretrained-char/{family}.json",
                    figures / f"confusion_pretrained-char_{family}.png", 0, {"model": family, "size": "mini"})
    write_json(t / "quantize/char/bert.json", {
        "model": "char/bert", "backbone": "bert", "granularity": "char",
        "trained": {"size": "mini", "test_rows": 12,
                    "test_accuracy": {"fp32": 0.916667, "torch_int8": 0.833333, "ort_int8": 0.916667},
                    "agreement_with_fp32": {"torch_int8": 0.916667, "ort_int8": 1.0},
                    "size_bytes": {"fp32_bytes": 4_000_000, "torch_int8_bytes": 1_500_000, "onnx_fp32_bytes": 4_100_000,
                                   "ort_int8_bytes": 1_200_000, "torch_int8_ratio": 2.666667, "ort_int8_ratio": 3.333333}},
        "base": {"size": "base", "test_accuracy": "n/a (random weights: sizes and speed only)",
                 "size_bytes": {"fp32_bytes": 409_000_000, "torch_int8_bytes": 152_000_000,
                                "onnx_fp32_bytes": 409_500_000, "ort_int8_bytes": 104_000_000,
                                "torch_int8_ratio": 2.69, "ort_int8_ratio": 3.93}}})
    lat = {"fp32": 0.004, "torch_int8": 0.002, "ort_int8": 0.001, "torch_int8_speedup": 2.0, "ort_int8_speedup": 4.0}
    write_json(t / "quantize/char/bert_timing.json", {"device": "Test CPU", "threads": 2, "seq_len": 32,
                                                      "trained": {"batch_1": lat, "batch_64": lat}})
    write_json(t / "distill/char_tsv_bert.json", {"teacher": "bert", "granularity": "char", "labels": LABELS,
                                             "splits": {"train": {"rows": 12, "teacher_accuracy": 0.75}},
                                             "logit_format": "%.6f", "header": False})
    reports = {s: classification_report(GOLD, _predictions(3), LABELS, loss=0.8) for s in ("dev", "test")}
    write_evaluation(t / "students/char/textcnn_bert.json", t / "students/char/textcnn_bert_confusion.csv",
                     figures / "confusion_char_textcnn_bert.png", reports, {
                         "model": "char/textcnn", "teacher": "bert", "teacher_test_accuracy": 0.916667,
                         "student_test_accuracy": reports["test"]["accuracy"], "agreement_with_teacher": 0.833333,
                         "parameters": {"student": 100_000, "teacher": 863_107, "ratio": 8.63107},
                         "size_bytes": {"student": 400_000, "teacher": 3_500_000, "ratio": 8.75},
                         "distill": {"alpha": 0.5, "temperature": 2.0, "best_step": 10, "steps": 20,
                                     "stopped_early": False}})
    write_json(t / "students/char/textcnn_bert_timing.json", {
        "device": "Test CPU", "threads": 2, "train_seconds": 12.0, "train_steps": 20,
        "seconds_per_sample": {"batch_1": {"student": 0.0002, "teacher": 0.002, "speedup": 10.0},
                               "batch_64": {"student": 0.00002, "teacher": 0.0004, "speedup": 20.0}}})
    ens = {s: classification_report(GOLD, _predictions(1), LABELS, loss=0.5) for s in ("dev", "test")}
    write_evaluation(t / "ensemble.json", t / "ensemble_confusion.csv", figures / "confusion_ensemble.png", ens, {
        "model": "ensemble", "granularity": "char", "members": ["fasttext_char", "char/bert"],
        "weights": {"fasttext_char": 0.6, "char/bert": 0.4},
        "member_test_accuracy": {"fasttext_char": 0.75, "char/bert": 0.666667}})
    write_json(t / "latency_timing.json", {
        "device": "Test CPU", "cpu": {"model": "Test CPU", "flags": {"avx2": True, "amx_bf16": False}}, "threads": 1,
        "titles": 12, "seconds_per_sample": {
            "fasttext_char": {"batch_1": 0.0001, "batch_64": 0.00002},
            "char/bert": {"batch_1": 0.004, "batch_64": 0.0005},
            "quantized/char/bert_int8": {"batch_1": 0.002, "batch_64": 0.0004},
            "students/char/textcnn_bert": {"batch_1": 0.0002, "batch_64": 0.00003},
            "ensemble": {"batch_1": 0.005, "batch_64": 0.0006}}})
    sweep = [{"speed": s, "accuracy": a, "avg_exit_layer": e, "exit_layer_counts": {}, "flops_ratio": f,
              "agreement_with_speed_0": g}
             for s, a, e, f, g in ((0.0, 0.916667, 4.0, 1.0, 1.0), (0.5, 0.833333, 2.5, 0.66, 0.916667),
                                   (1.0, 0.5, 1.0, 0.3, 0.5))]
    write_json(t / "fastbert/char/bert.json", {"model": "char/bert-fastbert", "teacher": "bert", "num_layers": 4,
                                               "test_rows": 12, "stage1_final_loss": 0.1, "stage1_steps": 10,
                                               "sweep": sweep})
    write_json(t / "fastbert/char/bert_timing.json", {
        "device": "Test CPU", "threads": 2, "time_per_record": {"0.0": 0.004, "0.5": 0.003, "1.0": 0.001},
        "speedup_over_speed_0": {"0.0": 1.0, "0.5": 1.333333, "1.0": 4.0}})
    for variant, per_entity in (
            ("cluener", {"Person Name": 0.5, "Organization": 0.25, "Position": 0.0, "Company": 0.0, "Address": 0.0,
                         "Game": 0.0, "Government": 0.0, "Scene": 0.0, "Book": 0.0, "Movie": 0.0}),
            ("pd1998-devtest", {"LOC": 0.6, "ORG": 0.4, "PER": 0.8})):
        order = list(per_entity)
        write_json(m / f"ner/{variant}.json", {
            "variant": variant, "model": "bert-mini+CRF", "train_split": "train" if variant == "cluener" else "dev",
            "eval_split": "dev" if variant == "cluener" else "test", "train_sentences": 64, "eval_sentences": 100,
            "eval_sentences_available": 1343, "epochs": 1.0, "steps": 4, "train_loss": 20.0,
            "dropped_nested_spans": 0, "loss": 12.5, "precision": 0.55, "recall": 0.45, "f1": 0.495, "support": 70,
            "overall_macro_f1": sum(per_entity.values()) / len(per_entity), "entity_order": order,
            "per_entity": {k: {"type": k, "precision": v, "recall": v, "f1": v, "support": 7}
                           for k, v in per_entity.items()}})
        write_json(m / f"ner/{variant}_timing.json", {"device": "Test CPU", "threads": 1, "train_step_time": 0.3,
                                                     "train_epoch_time": 1.2, "valid_step_time": 0.15,
                                                     "valid_epoch_time": 0.3, "variant": variant})
    for name, acc in (("albert", 0.61), ("bert", 0.39)):
        write_json(m / f"lcqmc/{name}.json", {
            "variant": "lcqmc-devtest", "backbone": name, "model": f"{name}-mini", "train_split": "dev",
            "eval_split": "test", "global_step": 4, "epochs": 1.0, "samples": 64, "train_loss": 0.70,
            "eval_accuracy": acc, "eval_loss": 0.72, "eval_precision": 0.5, "eval_recall": 0.5, "eval_f1": 0.5,
            "eval_samples": 100, "eval_samples_available": 12500})
        write_json(m / f"lcqmc/{name}_timing.json", {"device": "Test CPU", "threads": 1, "train_step_time": 0.12,
                                                    "train_epoch_time": 0.5, "valid_step_time": 0.19,
                                                    "valid_epoch_time": 0.39, "backbone": name})
    return m


def build(root: Path, params: dict = PARAMS, prov: dict | None = PROVENANCE) -> tuple[str, str]:
    """(markdown, html), drawing the report's figures into root/reports/figures."""
    return R.build_reports(root / "metrics", REFERENCES, params, root / "reports", prov)


def build_md(root: Path, params: dict = PARAMS, prov: dict | None = PROVENANCE) -> str:
    """The markdown only, drawing no figures (fast)."""
    return R.build_report(root / "metrics", REFERENCES, params, prov)


@pytest.fixture(scope="module")
def fixture_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("report")
    make_fixture_metrics(root)
    return root


@pytest.fixture(scope="module")
def built(fixture_root) -> tuple[str, str]:
    return build(fixture_root)


def section(markdown: str, title: str) -> str:
    """The text of one `## title` section."""
    m = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", markdown, re.S | re.M)
    assert m, f"no section {title!r}"
    return m.group(1)


def row(markdown: str, first_cell: str) -> list[str]:
    """Cells of the first table row whose first cell is `first_cell`."""
    for line in markdown.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        if line.startswith("|") and cells[0] == first_cell:
            return cells
    raise AssertionError(f"no table row starting with {first_cell!r}")


def edited(root: Path, rel: str, edit) -> Path:
    """A copy of the fixture tree with one metrics JSON edited."""
    import shutil

    copy_root = root.parent / f"{root.name}-edit-{abs(hash(rel)) % 10**8}"
    if copy_root.exists():
        shutil.rmtree(copy_root)
    shutil.copytree(root, copy_root)
    path = copy_root / "metrics" / rel
    data = json.loads(path.read_text(encoding="utf-8"))
    edit(data)
    path.write_text(json.dumps(data), encoding="utf-8")
    return copy_root


# --- order, fences, determinism ----------------------------------------------------------------------

def test_sections_come_in_the_issue_order(built):
    md, _ = built
    titles = re.findall(r"^## (.*)$", md, re.M)
    assert titles == ["Dataset statistics", "Baselines", "Backbones (char and word)",
                      "Self-supervised pre-training (write-up 002's MLM/SOP table)", "Quantization (dynamic int8)",
                      "Distillation (TextCNN and FastBERT)", "Accuracy vs latency (every classifier)",
                      "Cached vs uncached feature loading", "Device speed", "NER (BERT+CRF)",
                      "LCQMC sentence-pair matching", "Environment provenance"]


def test_rebuilding_gives_identical_bytes(fixture_root, built):
    assert build(fixture_root) == built
    assert build_md(fixture_root) == built[0]  # drawing figures or not, the same markdown


def test_timing_changes_only_touch_fenced_blocks(fixture_root, built):
    def slower(d):
        d["test"]["feature_load_seconds_uncached"] = 0.55557

    def slower_served(d):
        d["seconds_per_sample"]["char/bert"]["batch_1"] = 0.987654

    root = edited(edited(fixture_root, "thucnews10/backbones/char/bert_timing.json", slower),
                  "thucnews10/latency_timing.json", slower_served)
    md = build_md(root, prov={**PROVENANCE, "git_commit": "ffff0000"})
    assert md != built[0]
    assert "987.654" in md and "0.5556" in md and "`ffff0000`" in md
    assert R.deterministic_part(md) == R.deterministic_part(built[0])


def test_deterministic_part_has_no_times_and_every_quality_table(built):
    stable = R.deterministic_part(built[0])
    assert "<!-- timing -->" not in stable and "<!-- provenance -->" not in stable
    for gone in ("ms/sample", "train_step_time", "cached load s", "git_commit", "ms/record"):
        assert gone not in stable
    for kept in ("| `fasttext_char` | char |", "| `bert` | mini |", "| `torch_int8` |", "TextCNN ← `bert`",
                 "| Person Name |", "| `albert` | `albert-mini` |"):
        assert kept in stable


def test_fences_are_balanced(built):
    md = built[0]
    for kind in R.FENCES:
        assert md.count(f"<!-- {kind} -->") == md.count(f"<!-- /{kind} -->") > 0


# --- sections ----------------------------------------------------------------------------------------

def test_dataset_section(built):
    text = section(built[0], "Dataset statistics")
    assert row(text, "train") == ["train", "12", "0", "1", "19.5", "25", "10.2", "4", "4"]
    assert "train-test: 2" in text and "profile `fixture`, dataset variant `thucnews10-33k`" in text


def test_baseline_row_has_ours_reference_and_delta(built):
    text = section(built[0], "Baselines")
    # fasttext_char: 2 of 12 test titles wrong -> 83.33; write-up 91.57
    assert row(text, "`fasttext_char`")[:8] == ["`fasttext_char`", "char", "75.00", "83.33", "82.22", "91.57",
                                                "-8.24", "`thucnews10-33k`"]
    assert "figures/confusion_fasttext_char.png" in text
    assert "dvc repro --glob 'evaluate_baseline*' report" in text


def test_baseline_number_follows_its_metrics_file(fixture_root):
    root = edited(fixture_root, "thucnews10/random_forest.json", lambda d: d["test"].update(accuracy=0.123456))
    assert row(section(build_md(root), "Baselines"), "`random_forest`")[3] == "12.35"


def test_missing_metrics_name_the_stage_and_invent_nothing(tmp_path):
    md, page = R.build_reports(tmp_path / "metrics", REFERENCES, PARAMS, tmp_path / "reports")
    for title, stage in (("Baselines", "'evaluate_baseline*'"), ("Quantization (dynamic int8)", "'quantize*'"),
                         ("NER (BERT+CRF)", "'evaluate_ner*'"), ("LCQMC sentence-pair matching", "'evaluate_pair*'"),
                         ("Backbones (char and word)", "dvc repro --glob 'evaluate_backbone*' report")):
        text = section(md, title)
        assert "**Not run yet:**" in text and stage in text, title
        assert not re.search(r"\| \d+\.\d\d \|", text.split("write-up")[0]), title
    assert "Environment provenance" not in md  # no provenance given, none printed


def test_partly_run_backbones_say_not_run(fixture_root):
    params = copy.deepcopy(PARAMS)
    params["backbones"]["granularities"]["char"].append("t5")
    text = section(build_md(fixture_root, params), "Backbones (char and word)")
    assert row(text, "`t5`")[:3] == ["`t5`", "not run", "—"]
    assert row(text, "`t5`")[6] == "92.35"  # the reference is still shown


def test_backbone_tables_and_identical_to_bert_note(built):
    text = section(built[0], "Backbones (char and word)")
    bert = row(text, "`bert`")  # first `bert` row is the char table
    assert bert[:6] == ["`bert`", "mini", "863107", "83.33", "91.67", "0.6000"]
    assert bert[6:] == ["94.05", "0.21", "-2.38"]
    assert "`roberta` reproduce `bert`'s char-level numbers exactly" in text
    assert "`albert` reproduce" not in text
    assert "figures/curves_char_albert.png" in text and "figures/confusion_word_bert.png" in text


def test_pretraining_tables_put_each_objective_beside_albert_zh_and_scratch_beside_pretrained(built):
    md, _ = built
    text = section(md, "Self-supervised pre-training (write-up 002's MLM/SOP table)")
    assert row(text, "`bert`")[:7] == ["`bert`", "bert objective", "25.00 (MLM)", "50.00 (NSP)", "6.500", "8.000", "3"]
    assert row(text, "`albert`")[3] == "75.00 (SOP)"
    assert row(text, "albert_zh_base") == ["albert_zh_base", "79.10", "99.00", "6", "1.01"]
    # from scratch char/bert gets 1 of 12 test rows wrong, the pretrained-here one none
    side_by_side = text.split("starting weights only")[1]
    assert row(side_by_side, "`bert`") == ["`bert`", "83.33", "91.67", "91.67", "100.00", "+8.33"]
    assert "pretrained-char-level backbones" not in md
    assert "50.0 ms" in text and "50.0 ms" not in section(R.deterministic_part(md), "Self-supervised pre-training "
                                                                                      "(write-up 002's MLM/SOP table)")


def test_granularity_table_pairs_ours_with_the_write_up_analogue(built):
    text = section(built[0], "Backbones (char and word)")
    m = re.search(r"\| `bert` \| 91\.67 \| 75\.00 \| -16\.67 \| wobert \| 73\.29 \| 93\.83 \| \+20\.54 \|", text)
    assert m, text
    reference_only = [line for line in text.splitlines() if line.startswith("| — | — | — | — |")]
    assert [line.split(" | ")[4] for line in reference_only] == ["roberta", "wonezha", "google"]
    assert row(text, "—")[4:] == ["roberta", "54.01", "78.27", "+24.26"]


def test_quantization_table(built):
    text = section(built[0], "Quantization (dynamic int8)")
    assert row(text, "`fp32`") == ["`fp32`", "91.67", "100.00", "3.8", "390.1", "94.05", "390.2", "-2.38"]
    assert row(text, "`torch_int8`") == ["`torch_int8`", "83.33", "91.67", "1.4", "145.0", "93.81", "145.6", "-10.48"]
    assert row(text, "`ort_int8`")[5:7] == ["—", "—"]
    timing = re.search(r"<!-- timing -->(.*?)<!-- /timing -->", text, re.S).group(1)
    assert row(timing, "trained")[1:] == ["1", "4.000", "2.000", "1.000", "2.00", "4.00"]


def test_textcnn_and_fastbert_tables(built):
    text = section(built[0], "Distillation (TextCNN and FastBERT)")
    assert row(text, "TextCNN ← `bert`")[:2] == ["TextCNN ← `bert`", "75.00"]
    assert row(text, "TextCNN ← `bert`")[6:] == ["91.65", "-16.65"]
    assert row(text, "`bert` (teacher)")[6] == "94.05"
    # our speeds plus the write-up's (0.1, 0.7, 0.8, 0.9 are only in the write-up)
    assert row(text, "0.5")[:7] == ["0.5", "83.33", "2.50", "0.660", "91.67", "93.33", "94.46"]
    assert row(text, "0.7")[1:] == ["not in `fastbert.speeds`", "—", "—", "—", "—", "94.48"]
    timing = "".join(re.findall(r"<!-- timing -->(.*?)<!-- /timing -->", text, re.S))
    speed_table = timing[timing.index("| speed | ours ms/record"):]
    assert row(speed_table, "1")[:3] == ["1", "1.00", "4.00"]
    assert row(speed_table, "1")[-2:] == ["6.2", "5.64"]
    assert "figures/fastbert_speed_bert.png" in timing


def test_timing_that_grows_with_the_batch_is_flagged_not_reported(fixture_root, built):
    assert "Not a result" not in built[0]

    def contradict(d):
        d["seconds_per_sample"]["batch_64"]["student"] = 0.0009  # 4.5x the batch-1 time per sample
    root = edited(fixture_root, "thucnews10/students/char/textcnn_bert_timing.json", contradict)
    text = section(build(root)[0], "Distillation (TextCNN and FastBERT)")
    assert "Not a result: time per sample grows with the batch size for TextCNN" in text


def test_accuracy_latency_marks_the_front_and_the_best_per_budget(built):
    text = section(built[0], "Accuracy vs latency (every classifier)")
    for label in ("`fasttext_char`", "`char/bert`", "`quantized/char/bert_int8`", "`students/char/textcnn_bert`",
                  "`ensemble`"):
        assert label in text
    # fastText (fastest) and char/bert (most accurate, faster than the equally accurate ensemble) are on
    # the front; the student (less accurate than fastText and slower) and the ensemble are not
    def by_name(name):
        rows = [[c.strip() for c in line.strip().strip("|").split(" | ")] for line in text.splitlines()
                if line.startswith("|")]
        return next(cells for cells in rows if len(cells) > 1 and cells[1] == f"`{name}`")
    front = {r: by_name(r)[4] for r in ("fasttext_char", "char/bert", "ensemble", "students/char/textcnn_bert")}
    assert front == {"fasttext_char": "yes", "char/bert": "yes", "ensemble": "", "students/char/textcnn_bert": ""}
    assert row(text, "≤ 0.1 ms")[1:] == ["`fasttext_char` (83.33 %)", "`fasttext_char` (83.33 %)"]
    assert row(text, "≤ 1 ms")[1:] == ["`fasttext_char` (83.33 %)", "`char/bert` (91.67 %)"]
    assert text.strip().startswith("<!-- timing -->")


def test_ensemble_table(built):
    text = section(built[0], "Baselines")
    assert row(text, "`fasttext_char`")[:2] == ["`fasttext_char`", "char"]
    ens = text[text.index("### Ensemble"):]
    assert row(ens, "`fasttext_char`") == ["`fasttext_char`", "0.6", "75.00"]
    assert row(ens, "**ensemble**") == ["**ensemble**", "1.0", "91.67"]


def test_cached_and_device_tables(built):
    cached = section(built[0], "Cached vs uncached feature loading")
    assert row(cached, "`char/bert`")[:6] == ["`char/bert`", "dev", "12", "0.0400", "0.0004", "100.0"]
    assert row(cached, "bert")[1:6] == ["2000", "24.25", "16.96", "26.92", "6.71"]
    device = section(built[0], "Device speed")
    assert row(device, "NER `cluener`")[3:] == ["300.0 ms", "1.2 s", "150.0 ms", "0.3 s"]
    assert row(device, "thucnews10 titles `char/bert`")[3:] == ["182.0 ms", "1m21s", "63.1 ms", "3.0 s"]
    assert row(device, "People's Daily 2014")[2:] == ["510.7 ms", "2h01m50s", "223.0 ms", "13m18s"]
    for text in (cached, device):
        assert text.strip().startswith("<!-- timing -->") and text.strip().endswith("<!-- /timing -->")


def test_ner_tables(built):
    text = section(built[0], "NER (BERT+CRF)")
    assert row(text, "`pd1998-devtest`")[1:8] == ["dev → test", "64", "100", "55.00", "45.00", "49.50", "12.5000"]
    assert row(text, "Person Name") == ["Person Name", "50.00", "7", "87.75", "-37.75"]
    assert row(text, "T")[1] == "not annotated in our data" and row(text, "T")[3] == "99.53"
    assert "People's Daily **1998**" in text


def test_ner_entity_follows_its_metrics_file(fixture_root):
    root = edited(fixture_root, "ner/cluener.json", lambda d: d["per_entity"]["Movie"].update(f1=0.777777))
    assert row(section(build_md(root), "NER (BERT+CRF)"), "Movie")[1] == "77.78"


def test_lcqmc_tables(built):
    text = section(built[0], "LCQMC sentence-pair matching")
    assert row(text, "`albert`") == ["`albert`", "`albert-mini`", "`lcqmc-devtest`", "dev → test", "64", "4",
                                     "61.00", "0.7200", "0.7000", "83.00", "0.41", "-22.00"]
    assert row(text, "ALBERT-xlarge") == ["ALBERT-xlarge", "87.3", "87.7"]


def test_provenance_is_printed_and_fenced(built):
    text = section(built[0], "Environment provenance")
    assert "<!-- provenance -->" in text and "`0123abcd`" in text
    assert row(text, "package `matplotlib`") == ["package `matplotlib`", "not installed"]


# --- figures and HTML ----------------------------------------------------------------------------------

def test_report_draws_its_figures_deterministically_where_inputs_are_stable(fixture_root, built):
    figures = fixture_root / "reports" / "figures"
    for name in ("accuracy_vs_latency.png", "fastbert_speed_bert.png", "curves_char_bert.png", "curves_word_bert.png"):
        assert (figures / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    before = (figures / "curves_char_albert.png").read_bytes()
    build(fixture_root)
    assert (figures / "curves_char_albert.png").read_bytes() == before
    assert b"Software" not in before and b"matplotlib" not in before


def test_html_is_self_contained_and_has_every_table(built):
    md, page = built
    assert "<script" not in page.lower()
    assert not re.search(r'(src|href)="(?!data:image/png;base64,|#)', page), "external resource in the page"
    ids = re.findall(r'<table id="([^"]+)"', page)
    assert len(ids) == len(set(ids))
    assert len(ids) == len(re.findall(r"^\|---", md, re.M))  # every markdown table is a table in the page
    for needed in ("tbl-dataset", "tbl-baselines", "tbl-backbones-char", "tbl-backbones-word", "tbl-granularity",
                   "tbl-quantize-bert", "tbl-textcnn", "tbl-fastbert-bert", "tbl-latency", "tbl-cache",
                   "tbl-device", "tbl-ner", "tbl-ner-entities-cluener", "tbl-lcqmc", "tbl-provenance"):
        assert needed in ids
    assert page.count('<img alt=') == md.count("![")  # every figure found and inlined
    assert 'class="missing"' not in page


def test_html_escapes_text_from_metrics(fixture_root):
    root = edited(fixture_root, "lcqmc/bert.json", lambda d: d.update(model="<b>evil</b>"))
    _, page = build(root)
    assert "<b>evil</b>" not in page and "&lt;b&gt;evil&lt;/b&gt;" in page


def test_report_stage_writes_md_html_and_provenance(fixture_root, tmp_path):
    import subprocess
    import sys

    import yaml

    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(PARAMS), encoding="utf-8")
    out = tmp_path / "reports" / "report.md"
    subprocess.run([sys.executable, str(ROOT / "workflow/scripts/report.py"), "--params", str(params_file),
                    "--metrics", str(fixture_root / "metrics"), "--references", str(REFERENCES), "--out", str(out),
                    "--html", str(out.with_suffix(".html")), "--provenance", str(tmp_path / "provenance.json")],
                   check=True, capture_output=True, cwd=ROOT)
    md = out.read_text(encoding="utf-8")
    assert "## Environment provenance" in md and json.loads((tmp_path / "provenance.json").read_text())["profile"] == "fixture"
    assert "<table" in out.with_suffix(".html").read_text(encoding="utf-8")
    assert (tmp_path / "reports/figures/accuracy_vs_latency.png").is_file()


def test_references_cover_the_write_up_numbers():
    import yaml

    refs = yaml.safe_load(REFERENCES.read_text(encoding="utf-8"))
    assert refs["thucnews10"]["quantize"]["bert"]["int8_test_accuracy"] == 0.9381
    assert refs["thucnews10"]["distill"]["textcnn"]["test_accuracy"] == 0.9165
    wobert = {r["speed"]: r for r in refs["thucnews10"]["fastbert"]["runs"]["wobert"]["sweep"]}
    assert wobert[0.9]["time_per_record"] == 0.0138 and wobert[1.0]["speedup"] == 5.64
    assert refs["ner"]["cluener"]["per_entity_f1"]["Address"] == 0.6371
    assert refs["lcqmc"]["bert"]["eval_accuracy"] == 0.51
    assert refs["cached_features"]["models"]["roberta"]["first"]["eval_seconds"] == 10.762685
    for section_ in ("quantize", "distill", "fastbert", "granularity"):
        assert "source" in refs["thucnews10"][section_]
    for top in ("cached_features", "device_speed", "lcqmc"):
        assert "source" in refs[top]


# --- the determinism check's comparison --------------------------------------------------------------

def _reproduce_check():
    import importlib.util

    spec = importlib.util.spec_from_file_location("reproduce_check", ROOT / "workflow" / "reproduce_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_reproduce_check_compares_quality_and_tables_but_not_timings(fixture_root, built, tmp_path):
    import shutil

    check = _reproduce_check()
    runs = []
    for name in ("run1", "run2"):
        d = tmp_path / name
        shutil.copytree(fixture_root / "metrics", d / "metrics")
        (d / "reports").mkdir()
        (d / "reports" / "report.md").write_text(built[0], encoding="utf-8")
        runs.append(d)
    assert check.compare(*runs) == []

    # new times and a new commit in run 2: still reproducible
    (runs[1] / "metrics/thucnews10/fastbert/char/bert_timing.json").write_text("{}", encoding="utf-8")
    md2 = build_md(runs[1], prov={**PROVENANCE, "git_commit": "ffff0000"})
    (runs[1] / "reports/report.md").write_text(md2, encoding="utf-8")
    assert md2 != built[0] and check.compare(*runs) == []

    # one quality number differs: both the metrics file and the report table are reported
    path = runs[1] / "metrics/lcqmc/bert.json"
    path.write_text(path.read_text(encoding="utf-8").replace('"eval_accuracy": 0.39', '"eval_accuracy": 0.4'),
                    encoding="utf-8")
    (runs[1] / "reports/report.md").write_text(build_md(runs[1]), encoding="utf-8")
    problems = check.compare(*runs)
    assert problems[0].endswith("lcqmc/bert.json: quality metrics differ")  # helpers names files under metrics/
    assert "tables differ outside the timing/provenance fences" in problems[1] and "+| `bert` |" in problems[1]

    # a metrics file only one run wrote
    (runs[0] / "metrics/extra.json").write_text("{}", encoding="utf-8")
    assert any(p.endswith("extra.json: written by only one of the two runs") for p in check.compare(*runs))


def test_own_data_report_names_the_data_and_leaves_the_write_ups_out(fixture_root, tmp_path):
    own = {**PARAMS, "data": {"variant": "thucnews10-33k", "path": str(tmp_path / "My Tickets"), "name": None}}
    root = tmp_path / "copy"
    import shutil

    shutil.copytree(fixture_root, root)
    (root / "metrics" / "my-tickets").symlink_to(root / "metrics" / "thucnews10")
    md = build_md(root, own)
    assert md.startswith("# zhbench report: my-tickets")
    assert "your own data `my-tickets`" in md
    baselines = section(md, "Baselines")
    assert "write-up" not in baselines.lower() and "| `fasttext_char` | char |" in baselines
    assert "THUCNews" not in md.split("## NER")[0]

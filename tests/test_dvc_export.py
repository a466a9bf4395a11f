"""dvc.yaml is generated from the Snakemake workflow (zhbench dag export-dvc), and is current.

What the generator derives, it derives from one place: a stage's code dependencies from what its
script imports, how an output is declared (metric, plot, cached or not) from where it lives.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

from helpers import ROOT, make_smoke_project, run
from zhbench.workflow.dvc_export import declare
from zhbench.workflow.imports import code_deps


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A clean copy of the working tree with the default profile (the one dvc.yaml is committed for)."""
    return make_smoke_project(tmp_path_factory.mktemp("export") / "project", profile=None)


def test_committed_dvc_yaml_is_what_the_workflow_generates(project):
    proc = run([sys.executable, "-m", "zhbench.cli", "dag", "export-dvc", "--check"], cwd=project, check=False)
    assert proc.returncode == 0, proc.stderr + "\nrun `make dvc.yaml` and commit it"


def test_every_stage_has_its_rules_command_deps_and_params(project):
    stages = yaml.safe_load((project / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    assert {"download", "preprocess", "train_backbone-char-bert", "evaluate_baseline-fasttext_word", "report"} <= set(stages)
    bert = stages["train_backbone-char-bert"]
    assert bert["cmd"].startswith("workflow/python workflow/scripts/train_backbone.py ")
    assert "backbones.bert" in bert["params"] and "seed" in bert["params"]
    assert "src/zhbench/fit.py" in bert["deps"] and "models/thucnews10/vocab/char" in bert["deps"]
    assert "data/processed/thucnews10" in bert["deps"]
    for name, stage in stages.items():
        script = stage["cmd"].split()[1]
        assert script in stage["deps"], name
        assert set(code_deps(ROOT / script)) <= {str(d) for d in stage["deps"]}, name


@pytest.mark.parametrize("path, section, entry", [
    ("metrics/thucnews10/fasttext_char.json", "metrics", {"cache": False}),
    ("metrics/thucnews10/fasttext_char_timing.json", "outs", {"cache": False}),
    ("metrics/provenance.json", "outs", {"cache": False}),
    ("metrics/thucnews10/backbones/char/bert_confusion.csv", "plots",
     {"template": "confusion", "x": "actual", "y": "predicted", "cache": False}),
    ("metrics/thucnews10/curves/char/bert", "plots", {"x": "step", "cache": False}),
    ("reports/figures/confusion_char_bert.png", "outs", {"cache": False}),
    ("reports/report.md", "outs", {"cache": False}),
    ("reports/report.html", "outs", None),
    ("models/thucnews10/backbones/char/bert", "outs", None),
])
def test_outputs_are_declared_by_where_they_live(path, section, entry):
    assert declare(path) == (section, {path: entry} if entry is not None else path)


def test_code_deps_follow_imports_through_modules_and_functions(tmp_path, monkeypatch):
    pkg = tmp_path / "src" / "zhbench"
    (pkg / "models").mkdir(parents=True)
    for f in ("__init__.py", "models/__init__.py", "unused.py"):
        (pkg / f).write_text("")
    (pkg / "a.py").write_text("import os\nfrom zhbench.models import b\n")
    (pkg / "models" / "b.py").write_text("def f():\n    from zhbench.c import g\n    return g\n")
    (pkg / "c.py").write_text("def g():\n    pass\n")
    script = tmp_path / "script.py"
    script.write_text("from zhbench.a import thing\n")
    monkeypatch.chdir(tmp_path)
    assert code_deps(script, tmp_path / "src") == sorted(
        f"src/zhbench/{f}" for f in ("__init__.py", "a.py", "c.py", "models/__init__.py", "models/b.py"))


def test_code_deps_follow_modules_a_registry_names_by_string(tmp_path, monkeypatch):
    pkg = tmp_path / "src" / "zhbench"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "registry.py").write_text('LAZY = {"kind": ("zhbench.plugin", "load")}\nDOC = "zhbench.missing is not a file"\n')
    (pkg / "plugin.py").write_text("def load():\n    pass\n")
    script = tmp_path / "script.py"
    script.write_text("from zhbench import registry\n")
    monkeypatch.chdir(tmp_path)
    assert code_deps(script, tmp_path / "src") == ["src/zhbench/__init__.py", "src/zhbench/plugin.py",
                                                   "src/zhbench/registry.py"]

"""Which zhbench modules a stage script really runs: the code dependencies of its stage.

A stage must rerun when any module it imports changes, directly or through another module, at the
top of a file or inside a function. Typing those files by hand drifts (a stage that imports the CRF
tagger through ner.py would miss it); reading the imports does not. Static: the files are parsed,
never imported, so this is cheap enough to run at every workflow load.
"""
from __future__ import annotations

import ast
import os
import re
from functools import lru_cache
from pathlib import Path

PACKAGE = "zhbench"
DOTTED_MODULE = re.compile(rf"{PACKAGE}(\.[A-Za-z_][A-Za-z0-9_]*)+")


def _module_file(src: Path, dotted: str) -> Path | None:
    """src/zhbench/a/b.py or src/zhbench/a/b/__init__.py for "zhbench.a.b", if it exists."""
    base = src.joinpath(*dotted.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


@lru_cache(maxsize=None)  # the stage scripts share most of their modules: parse each file once
def _imported_modules(path: Path) -> frozenset[str]:
    """Dotted names of every zhbench module `path` imports (absolute imports: the project uses no
    relative ones); `from zhbench.x import y` names zhbench.x and, when y is a module, zhbench.x.y.
    A string that is a zhbench module's dotted name counts too: that is how a loader registry
    (zhbench.predict's LAZY_LOADERS, through importlib) names code it runs."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and DOTTED_MODULE.fullmatch(node.value):
            names.add(node.value)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names if a.name.split(".")[0] == PACKAGE)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 \
                and node.module.split(".")[0] == PACKAGE:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return frozenset(names)


@lru_cache(maxsize=None)
def _closure(script: str, src: str) -> tuple[str, ...]:
    src_dir = Path(src)
    todo, seen = [Path(script)], set()
    files: set[Path] = set()
    while todo:
        path = todo.pop()
        for dotted in _imported_modules(path):
            # importing zhbench.a.b runs zhbench/__init__.py and zhbench/a/__init__.py first
            parts = dotted.split(".")
            for i in range(1, len(parts) + 1):
                name = ".".join(parts[:i])
                if name in seen:
                    continue
                seen.add(name)
                module = _module_file(src_dir, name)
                if module is not None:
                    files.add(module)
                    todo.append(module)
    return tuple(sorted(os.path.relpath(f) for f in files))


def code_deps(script: str | os.PathLike, src: str | os.PathLike = "src") -> list[str]:
    """The zhbench source files `script` imports, transitively, as paths relative to the working
    directory (the project root, where both engines run), sorted."""
    return list(_closure(str(script), str(Path(src).resolve())))

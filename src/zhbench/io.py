"""Atomic writes, stable JSON and input errors that name file and line.

Every stage writes through these helpers so that a killed stage never leaves a half-written
output (the stage contract), and so that quality metrics are byte-identical across reruns.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

# Quality metrics are rounded so that the last bits of float summation order can never make
# two identical runs differ in their committed JSON.
METRIC_DECIMALS = 6


class BadInputError(ValueError):
    """Bad input data: always says which file, which line, what was expected and what was found."""

    def __init__(self, path: str | os.PathLike, line: int | None, message: str):
        self.path = str(path)
        self.line = line
        self.message = message
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {message}")


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_utf8(path: str | os.PathLike) -> tuple[str, bytes]:
    """(text without a BOM, the bytes it was decoded from); bytes that are not UTF-8 are one error
    naming the line, with the usual fix for the GBK files Chinese corpora often come in."""
    data = Path(path).read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise BadInputError(
            path, line, f"not valid UTF-8 (byte 0x{data[e.start]:02x} at offset {e.start}); "
            "expected UTF-8 text — re-encode the file, e.g. `iconv -f GBK -t UTF-8`"
        ) from None
    return text.removeprefix("\ufeff"), data


def _temp_prefix(path: Path) -> str:
    # The writer's pid is in the name, so a later writer can tell a dead one's leftovers apart.
    return f".{path.name}.{os.getpid()}."


def _remove_stale_temps(path: Path) -> None:
    """Delete temp files/dirs beside `path` left by writers that were killed (SIGKILL skips the
    cleanup below); a live writer's temp, e.g. a parallel job's, is left alone."""
    import shutil

    prefix = f".{path.name}."
    for tmp in path.parent.glob(f"{prefix}*.tmp"):
        pid = tmp.name[len(prefix):].split(".", 1)[0]
        if not pid.isdigit() or _alive(int(pid)):
            continue
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it over `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(path)
    fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path), suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o644)  # mkstemp creates 0600; outputs are ordinary files
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary directory beside `path`; it replaces `path` only if the block succeeds."""
    import shutil

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(path)
    tmp_path = Path(tempfile.mkdtemp(prefix=_temp_prefix(path), suffix=".tmp", dir=path.parent))
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o755)  # mkdtemp creates 0700
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            shutil.rmtree(tmp_path)


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def round_floats(obj: Any, decimals: int = METRIC_DECIMALS) -> Any:
    """Round every float in a nested structure; NaN/inf become None (JSON has no NaN)."""
    if isinstance(obj, float):
        return None if not math.isfinite(obj) else round(obj, decimals)
    if isinstance(obj, dict):
        return {k: round_floats(v, decimals) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [round_floats(v, decimals) for v in obj]
    if hasattr(obj, "item") and callable(obj.item):  # numpy / torch scalars
        return round_floats(obj.item(), decimals)
    return obj


def dumps_json(obj: Any, decimals: int = METRIC_DECIMALS) -> str:
    return json.dumps(round_floats(obj, decimals), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_json(path: str | os.PathLike, obj: Any, decimals: int = METRIC_DECIMALS) -> None:
    """Write JSON atomically with sorted keys and rounded floats (byte-stable across reruns)."""
    write_text(path, dumps_json(obj, decimals))


def read_json(path: str | os.PathLike) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)

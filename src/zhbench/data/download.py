"""Fetch a dataset variant: mirror first, then the public URL; verify every byte; all or nothing."""
from __future__ import annotations

import hashlib
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from zhbench.data.registry import RemoteFile, Variant
from zhbench.io import atomic_dir, write_json

log = logging.getLogger(__name__)

MIRROR_ENV = "ZHBENCH_MIRROR"
MIRROR_CONFIG = "config/mirror.yaml"
_CHUNK = 1 << 20


class ChecksumError(RuntimeError):
    pass


class DownloadError(RuntimeError):
    pass


@dataclass(frozen=True)
class Digests:
    sha256: str
    git_blob: str
    size: int


def digests(path: Path) -> Digests:
    """sha256 and the git blob id (sha1 of 'blob <size>\\0' + content) in one pass."""
    size = path.stat().st_size
    sha256 = hashlib.sha256()
    blob = hashlib.sha1(f"blob {size}\0".encode())
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            sha256.update(chunk)
            blob.update(chunk)
    return Digests(sha256.hexdigest(), blob.hexdigest(), size)


def verify(path: Path, remote: RemoteFile, origin: str) -> Digests:
    got = digests(path)
    checks = [("git blob", remote.git_blob, got.git_blob)]
    if remote.sha256:
        checks.insert(0, ("sha256", remote.sha256, got.sha256))
    for kind, expected, actual in checks:
        if expected != actual:
            size_note = f" ({got.size} bytes, expected {remote.size})" if remote.size and remote.size != got.size else ""
            raise ChecksumError(
                f"{remote.name} from {origin}: {kind} mismatch{size_note}: expected {expected}, got {actual}"
            )
    return got


def _fetch_url(url: str, dest: Path, timeout: float) -> None:
    import requests

    with requests.get(url, stream=True, timeout=timeout) as r:
        r.raise_for_status()
        total = int(r.headers.get("content-length", 0)) or None
        with open(dest, "wb") as f, tqdm(total=total, unit="B", unit_scale=True, desc=dest.name, leave=False) as bar:
            for chunk in r.iter_content(_CHUNK):
                f.write(chunk)
                bar.update(len(chunk))


def _mirror_root(mirror: str | os.PathLike | None) -> Path | None:
    """The mirror to look in first: the argument, else $ZHBENCH_MIRROR, else config/mirror.yaml."""
    root = mirror if mirror is not None else os.environ.get(MIRROR_ENV) or configured_mirror()
    return Path(root) if root else None


def configured_mirror(config: str | os.PathLike = MIRROR_CONFIG) -> str | None:
    """`mirror:` of config/mirror.yaml (relative to the project root, where stages run), when that
    directory exists."""
    import yaml

    path = Path(config)
    if not path.is_file():
        return None
    mirror = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("mirror")
    if not mirror:
        return None
    if not isinstance(mirror, str):
        raise ValueError(f"{path}: `mirror:` must be a directory path or null, found {mirror!r}")
    root = Path(mirror).expanduser()
    if not root.is_dir():
        log.info("mirror %s (from %s) does not exist here: fetching the public URLs", root, path)
        return None
    return str(root)


def fetch_variant(variant: Variant, out_dir: str | os.PathLike, mirror: str | os.PathLike | None = None,
                  timeout: float = 30.0) -> dict:
    """Fill `out_dir` with the variant's files, verified; returns the provenance manifest.

    The directory appears only when every file is present and verified, so a checksum mismatch
    or a network failure leaves nothing behind.
    """
    root = _mirror_root(mirror)
    manifest = {"variant": variant.name, "description": variant.description, "files": {}}
    unreachable: list[str] = []
    with atomic_dir(out_dir) as tmp:
        for remote in variant.files:
            dest = tmp / remote.name
            origin = _fetch_one(remote, dest, root, timeout, unreachable)
            if origin is None:
                continue
            got = verify(dest, remote, origin)
            manifest["files"][remote.name] = {
                "origin": "mirror" if origin.startswith("mirror") else origin,
                "sha256": got.sha256, "git_blob": got.git_blob, "bytes": got.size,
            }
        if unreachable:
            hint = (f"set `mirror:` in {MIRROR_CONFIG} (or the environment variable {MIRROR_ENV}) to a "
                    "directory holding the mirrored files" if root is None else
                    f"the mirror {root} does not hold them either")
            raise DownloadError(
                f"cannot download dataset {variant.name!r}: {len(unreachable)} file(s) unreachable "
                f"({'; '.join(unreachable)}); {hint}"
            )
        write_json(tmp / "SOURCE.json", manifest)
    return manifest


def _fetch_one(remote: RemoteFile, dest: Path, root: Path | None, timeout: float,
               unreachable: list[str]) -> str | None:
    if root is not None:
        src = root / remote.mirror_path
        if src.is_file():
            log.info("%s: copying from mirror %s", remote.name, src)
            shutil.copyfile(src, dest)
            return f"mirror {src}"
        log.warning("%s: not in mirror (%s), trying %s", remote.name, src, remote.url)
    try:
        log.info("%s: downloading %s", remote.name, remote.url)
        _fetch_url(remote.url, dest, timeout)
        return remote.url
    except Exception as e:  # any network failure: collect them all, report once
        log.debug("download failed: %s", e)
        unreachable.append(f"{remote.url} ({type(e).__name__})")
        return None


def take_own_files(files: list[str], out_dir: str | os.PathLike) -> dict:
    """Copy the user's own data files into `out_dir` (atomically), with their sha256 in SOURCE.json."""
    if not files:
        raise DownloadError("data.path holds no train/dev/test file; expected e.g. train.csv and test.csv")
    manifest = {"variant": "own data", "files": {}}
    with atomic_dir(out_dir) as tmp:
        for src in files:
            dest = tmp / Path(src).name
            shutil.copyfile(src, dest)
            manifest["files"][dest.name] = {"origin": str(src), "bytes": dest.stat().st_size,
                                            "sha256": hashlib.sha256(dest.read_bytes()).hexdigest()}
        write_json(tmp / "SOURCE.json", manifest)
    return manifest

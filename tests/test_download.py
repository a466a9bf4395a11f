"""download: mirror first, then URL; every file verified; nothing left behind on failure."""
from __future__ import annotations

import functools
import hashlib
import http.server
import threading
from pathlib import Path

import pytest

from helpers import MIRROR
from zhbench.data.download import ChecksumError, DownloadError, digests, fetch_variant
from zhbench.data.registry import VARIANTS, RemoteFile, Variant

CONTENT = "中华女子学院：本科层次仅1专业招男生\t3\n".encode() * 50


def _remote(name: str, url: str, content: bytes = CONTENT) -> RemoteFile:
    blob = hashlib.sha1(f"blob {len(content)}\0".encode() + content).hexdigest()
    return RemoteFile(name, url, f"toy/{name}", blob, hashlib.sha256(content).hexdigest(), len(content))


@pytest.fixture
def http_dir(tmp_path):
    """A loopback HTTP server over a directory; yields (dir, base_url)."""
    served = tmp_path / "served"
    served.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_git_blob_id_matches_git(tmp_path):
    p = tmp_path / "f.txt"
    p.write_bytes(b"hello\n")
    # `git hash-object` of "hello\n" is a well-known constant.
    assert digests(p).git_blob == "ce013625030ba8dba906f756967f9e9ca394464a"


def test_registry_checksums_are_well_formed():
    for v in VARIANTS.values():
        for f in v.files:
            assert len(f.git_blob) == 40 and (f.sha256 is None or len(f.sha256) == 64), f.name
    assert VARIANTS["thucnews10"].files[1].sha256 is None  # only the blob id of the full train is published


def test_downloads_and_verifies_over_http(tmp_path, http_dir):
    served, base = http_dir
    (served / "train.txt").write_bytes(CONTENT)
    variant = Variant("toy", "toy", "toy", (_remote("train.txt", f"{base}/train.txt"),))
    manifest = fetch_variant(variant, tmp_path / "out", mirror="")
    assert (tmp_path / "out" / "train.txt").read_bytes() == CONTENT
    assert manifest["files"]["train.txt"]["origin"] == f"{base}/train.txt"


def test_truncated_download_is_rejected_and_leaves_nothing(tmp_path, http_dir):
    served, base = http_dir
    (served / "train.txt").write_bytes(CONTENT[: len(CONTENT) // 2])
    variant = Variant("toy", "toy", "toy", (_remote("train.txt", f"{base}/train.txt"),))
    with pytest.raises(ChecksumError, match=r"train.txt .*sha256 mismatch .*expected [0-9a-f]{64}, got [0-9a-f]{64}"):
        fetch_variant(variant, tmp_path / "out", mirror="")
    assert not (tmp_path / "out").exists()
    assert not any(p.name.startswith(".out") for p in tmp_path.iterdir())  # no temp dir left either


def test_mirror_checksum_mismatch_names_file_and_both_sums(tmp_path):
    mirror = tmp_path / "mirror"
    (mirror / "toy").mkdir(parents=True)
    (mirror / "toy" / "dev.txt").write_bytes(CONTENT + b"extra\t1\n")
    variant = Variant("toy", "toy", "toy", (_remote("dev.txt", "http://127.0.0.1:9/dev.txt"),))
    with pytest.raises(ChecksumError) as e:
        fetch_variant(variant, tmp_path / "out", mirror=mirror)
    msg = str(e.value)
    assert "dev.txt" in msg and hashlib.sha256(CONTENT).hexdigest() in msg
    assert not (tmp_path / "out").exists()


def test_offline_without_mirror_lists_urls_and_how_to_set_mirror(tmp_path, monkeypatch):
    monkeypatch.delenv("ZHBENCH_MIRROR", raising=False)
    monkeypatch.chdir(tmp_path)  # no config/mirror.yaml here
    variant = Variant("toy", "toy", "toy", (_remote("a.txt", "http://127.0.0.1:9/a.txt"),
                                             _remote("b.txt", "http://127.0.0.1:9/b.txt")))
    with pytest.raises(DownloadError) as e:
        fetch_variant(variant, tmp_path / "out", timeout=2)
    msg = str(e.value)
    assert "http://127.0.0.1:9/a.txt" in msg and "http://127.0.0.1:9/b.txt" in msg
    assert "ZHBENCH_MIRROR" in msg and "config/mirror.yaml" in msg
    assert not (tmp_path / "out").exists()


def test_mirror_comes_from_the_committed_config_unless_the_environment_names_one(tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    (mirror / "toy").mkdir(parents=True)
    (mirror / "toy" / "a.txt").write_bytes(CONTENT)
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "mirror.yaml").write_text("mirror: mirror\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ZHBENCH_MIRROR", raising=False)
    variant = Variant("toy", "toy", "toy", (_remote("a.txt", "http://127.0.0.1:9/a.txt"),))
    assert fetch_variant(variant, tmp_path / "out", timeout=2)["files"]["a.txt"]["origin"] == "mirror"
    monkeypatch.setenv("ZHBENCH_MIRROR", str(tmp_path / "elsewhere"))
    with pytest.raises(DownloadError, match="elsewhere"):
        fetch_variant(variant, tmp_path / "out2", timeout=2)


def test_existing_output_survives_a_failed_download(tmp_path, monkeypatch):
    monkeypatch.delenv("ZHBENCH_MIRROR", raising=False)
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("old")
    variant = Variant("toy", "toy", "toy", (_remote("a.txt", "http://127.0.0.1:9/a.txt"),))
    with pytest.raises(DownloadError):
        fetch_variant(variant, out, timeout=2)
    assert (out / "keep.txt").read_text() == "old"


@pytest.mark.skipif(not Path(MIRROR).exists(), reason="needs the mirrored datasets (../shared/data beside the project)")
def test_real_mirror_verifies_the_default_variant(tmp_path):
    manifest = fetch_variant(VARIANTS["thucnews10-33k"], tmp_path / "raw", mirror=MIRROR)
    assert set(manifest["files"]) == {"class.txt", "train.txt", "dev.txt", "test.txt"}
    assert sum(1 for _ in open(tmp_path / "raw" / "train.txt", encoding="utf-8")) == 33590

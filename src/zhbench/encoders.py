"""How a title becomes model input ids: the one place that knows both encodings a backbone can use.

- `VocabEncoder`: the project's own WordLevel vocabulary (text/vocab.py, tokenizer.json), for
  backbones trained from scratch. It reads the processed token splits (`<granularity>/<split>.tsv`:
  segment()'s tokens joined by spaces), [PAD]=0, right padding, [CLS] .. [SEP].
- `CheckpointEncoder`: a pretrained checkpoint's own tokenizer, chosen by family
  (models/checkpoint_tokenizer.py). At char granularity it reads the raw titles (`text/<split>.tsv`):
  WordPiece and sentencepiece split raw text themselves. At word granularity it reads the jieba
  words and tokenises each word on its own, as WoBERT does. Pad id, padding side and special tokens
  are the tokenizer's (XLNet pads on the left with <pad>=5 and ends in <sep> <cls>).

Both are saved into a fine-tuned model's directory and rebuilt from it by `load_encoder`, so
evaluation, quantization, distillation, FastBERT and serving encode exactly as training did.
"""
from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import torch

from zhbench.io import sha256_file
from zhbench.preprocess import TEXT_DIR
from zhbench.text import segment

VOCAB_FILE = "tokenizer.json"
PRETRAIN_EXPORT = "pretrain.json"  # what the pretrain stage writes beside its checkpoint
# Every file a tokenizer may be saved as (the project vocabulary: tokenizer.json only).
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
                   "vocab.txt", "spiece.model")


class VocabEncoder:
    """The project's WordLevel vocabulary over pre-segmented tokens."""

    kind = "vocab"
    padding_side = "right"
    pad_id = 0

    def __init__(self, tokenizer_file: str | os.PathLike, granularity: str):
        from zhbench.text.vocab import load_tokenizer

        self.tokenizer_file = Path(tokenizer_file)
        self.granularity = granularity
        self.tokenizer = load_tokenizer(self.tokenizer_file)
        self.fingerprint = sha256_file(self.tokenizer_file)

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size()

    def input_file(self, data_dir: str | os.PathLike, split: str) -> Path:
        return Path(data_dir) / self.granularity / f"{split}.tsv"

    def prepare(self, title: str, stopwords=()) -> str:
        """A raw title as this encoder's input line: its tokens joined by spaces (as preprocessing)."""
        return " ".join(segment(title, self.granularity, stopwords))

    def encode(self, texts: list[str], max_len: int) -> dict[str, torch.Tensor]:
        tok = self.tokenizer
        # Truncation inside the tokenizer keeps [SEP] at the end of a cut title, as BERT expects.
        tok.enable_truncation(max_length=max_len)
        tok.enable_padding(pad_id=self.pad_id, pad_token="[PAD]", length=max_len)
        encodings = tok.encode_batch(texts)
        return {"input_ids": torch.tensor([e.ids for e in encodings], dtype=torch.long),
                "attention_mask": torch.tensor([e.attention_mask for e in encodings], dtype=torch.long)}

    def save(self, model_dir: str | os.PathLike) -> dict:
        shutil.copyfile(self.tokenizer_file, Path(model_dir) / VOCAB_FILE)
        return {"kind": self.kind, "granularity": self.granularity}


class CheckpointEncoder:
    """A pretrained checkpoint's tokenizer over raw titles (char) or jieba words (word)."""

    kind = "checkpoint"

    def __init__(self, tokenizer, family: str, granularity: str):
        from zhbench.models.checkpoint_tokenizer import tokenizer_fingerprint

        self.tokenizer, self.family, self.granularity = tokenizer, family, granularity
        self.padding_side = tokenizer.padding_side
        self.pad_id = tokenizer.pad_token_id
        self.fingerprint = hashlib.sha256(f"{tokenizer_fingerprint(tokenizer)}|{granularity}".encode()).hexdigest()

    @classmethod
    def load(cls, family: str, source: str | os.PathLike, granularity: str) -> "CheckpointEncoder":
        from zhbench.models.checkpoint_tokenizer import load_checkpoint_tokenizer

        return cls(load_checkpoint_tokenizer(family, source), family, granularity)

    @property
    def vocab_size(self) -> int:
        return len(self.tokenizer)

    def input_file(self, data_dir: str | os.PathLike, split: str) -> Path:
        return Path(data_dir) / (TEXT_DIR if self.granularity == "char" else self.granularity) / f"{split}.tsv"

    def prepare(self, title: str, stopwords=()) -> str:
        """A raw title as this encoder's input line: the title itself (char), or its jieba words."""
        return title.strip() if self.granularity == "char" else " ".join(segment(title, self.granularity, stopwords))

    def encode(self, texts: list[str], max_len: int) -> dict[str, torch.Tensor]:
        from zhbench.models.checkpoint_encoding import encode_texts, encode_words

        if self.granularity == "char":
            return encode_texts(self.tokenizer, texts, max_len)
        return encode_words(self.tokenizer, [t.split(" ") for t in texts], max_len)

    def save(self, model_dir: str | os.PathLike) -> dict:
        self.tokenizer.save_pretrained(str(model_dir))
        return {"kind": self.kind, "family": self.family, "granularity": self.granularity}


def training_encoder(family: str, granularity: str, pretrained: str | None, vocab_dir: str | os.PathLike):
    """The encoder a backbone trains with: its checkpoint's tokenizer when it starts from a
    pretrained checkpoint (a vocabulary that is not the checkpoint's would point every id at an
    unrelated embedding row), else the project's vocabulary."""
    if pretrained and (Path(pretrained) / PRETRAIN_EXPORT).is_file():
        # pre-trained here (the pretrain stage) over the project's own vocabulary: read as it was
        return VocabEncoder(Path(pretrained) / VOCAB_FILE, granularity)
    if pretrained:
        return CheckpointEncoder.load(family, pretrained, granularity)
    return VocabEncoder(Path(vocab_dir) / VOCAB_FILE, granularity)


def starting_point(pretrained: str | None, family: str, size: str) -> str:
    """What a model was fine-tuned from, as the report names it: a hub id or directory, the
    pretrain stage's checkpoint ("bert-mini, pre-trained here"), or random weights ("bert-mini")."""
    if pretrained and (Path(pretrained) / PRETRAIN_EXPORT).is_file():
        return f"{family}-{size}, pre-trained here"
    return str(pretrained) if pretrained else f"{family}-{size}"


def load_encoder(model_dir: str | os.PathLike, meta: dict):
    """The encoder a model dir was trained with, from the `encoder` record save() wrote into its
    metadata (a dir without one holds the project vocabulary's tokenizer.json)."""
    model_dir = Path(model_dir)
    record = meta.get("encoder") or {"kind": "vocab", "granularity": meta.get("granularity", "char")}
    if record["kind"] == "checkpoint":
        return CheckpointEncoder.load(record["family"], model_dir, record["granularity"])
    return VocabEncoder(model_dir / VOCAB_FILE, record["granularity"])


def copy_tokenizer(src_dir: str | os.PathLike, dest_dir: str | os.PathLike) -> None:
    """Copy a model dir's tokenizer files into another model dir built from it (int8, ONNX, FastBERT)."""
    for name in TOKENIZER_FILES:
        if (Path(src_dir) / name).is_file():
            shutil.copyfile(Path(src_dir) / name, Path(dest_dir) / name)

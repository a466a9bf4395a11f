"""The pretrained path uses the checkpoint's weights AND its ids: a known-answer check.

A mini BERT is trained here on real titles, then exported the way a hub repo ships a checkpoint:
config.json + model.safetensors + a vocab.txt in an id order of its own (BERT's special-token
layout, characters shuffled), the embedding rows moved to match. Fine-tuned through the pretrained
path for a few dozen steps, it must be far above a from-scratch start with the same steps. The
same export with the vocab.txt shuffled but the rows left in place (ids pointing at the wrong
rows, the bug this path once had) must not.
"""
from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch

from helpers import MIRROR
from zhbench.classify import dev_evaluator, predict
from zhbench.encoders import VocabEncoder, training_encoder
from zhbench.features import load_features
from zhbench.fit import FitSettings, fit
from zhbench.models.backbones import SequenceClassifier, build_backbone
from zhbench.preprocess import PreprocessConfig, preprocess
from zhbench.text.vocab import build_vocab, save_tokenizer

TINY = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 128}
MAX_LEN = 32
FINE_TUNE_LR = 1e-3
BERT_SPECIALS = ["[PAD]", "[unused1]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]  # hub Chinese BERT's first ids


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """Real titles: 4,000 to pre-train on, 300 to fine-tune on, 600 dev (a processed dataset dir)."""
    raw = tmp_path_factory.mktemp("raw")
    thuc = Path(MIRROR) / "thucnews_10class_titles"
    (raw / "class.txt").write_bytes((thuc / "class.txt").read_bytes())
    lines = (thuc / "partial" / "train.prefix_33590_lines.txt").read_text(encoding="utf-8").splitlines()
    random.Random(0).shuffle(lines)
    (raw / "train.txt").write_text("\n".join(lines[:4000]) + "\n", encoding="utf-8")
    (raw / "test.txt").write_text("\n".join(lines[4000:4300]) + "\n", encoding="utf-8")  # the fine-tuning rows
    (raw / "dev.txt").write_text("\n".join((thuc / "dev.txt").read_text(encoding="utf-8").splitlines()[::16][:600])
                                 + "\n", encoding="utf-8")
    out = tmp_path_factory.mktemp("processed")
    preprocess(raw, out, PreprocessConfig())
    return out


def _train(model, feats, dev, steps: int, lr: float):
    settings = FitSettings(batch_size=32, lr=lr, epochs=1000, max_steps=steps, eval_every=steps, seed=1)
    fit(model, feats, settings, evaluate=dev_evaluator(dev, settings), progress=False)
    logits, _ = predict(model, dev, 256)
    return float((logits.argmax(1) == dev.labels).float().mean())


@pytest.fixture(scope="module")
def pretrained(data, tmp_path_factory) -> tuple[SequenceClassifier, dict[str, int], Path]:
    """(a mini BERT trained on the 4,000 titles, its vocabulary, the vocab dir). Seen here: 0.67 dev
    accuracy after its fine-tuning below, against 0.20 from scratch and 0.22 with misaligned ids."""
    vocab_dir = tmp_path_factory.mktemp("vocab")
    tok, _ = build_vocab(data / "char" / "train.tsv", "char")
    save_tokenizer(tok, vocab_dir / "tokenizer.json")
    enc = VocabEncoder(vocab_dir / "tokenizer.json", "char")
    train, _ = load_features(data / "char" / "train.tsv", enc, MAX_LEN, "char", 10)
    dev, _ = load_features(data / "char" / "dev.tsv", enc, MAX_LEN, "char", 10)
    torch.manual_seed(0)
    model = SequenceClassifier(build_backbone("bert", "mini", enc.vocab_size, MAX_LEN, overrides=TINY), "bert", 10, 0.0)
    acc = _train(model, train, dev, steps=1000, lr=3e-3)
    assert acc > 0.5, f"the model to export did not learn ({acc:.3f})"
    return model, tok.get_vocab(), vocab_dir


def export_hub_checkpoint(model: SequenceClassifier, vocab: dict[str, int], out: Path, align_rows: bool) -> Path:
    """The backbone in hub layout with a vocab.txt of its own order; `align_rows` moves each
    token's embedding row to its new id (a faithful export), else leaves the rows where they were."""
    tokens = [t for t in vocab if not t.startswith("[")]
    random.Random(7).shuffle(tokens)
    new_order = BERT_SPECIALS + tokens
    out.mkdir(parents=True)
    (out / "vocab.txt").write_text("\n".join(new_order) + "\n", encoding="utf-8")
    backbone = model.backbone
    old = backbone.embeddings.word_embeddings.weight.detach()
    ours = {"[unused1]": "[MASK]"}  # an id nobody reads; any row will do
    rows = torch.stack([old[vocab[ours.get(t, t)]] for t in new_order])
    if not align_rows:
        rows = old[torch.arange(len(new_order)) % old.shape[0]]
    backbone.config.vocab_size = len(new_order)
    backbone.resize_token_embeddings(len(new_order))
    with torch.no_grad():
        backbone.embeddings.word_embeddings.weight.copy_(rows)
    backbone.save_pretrained(out)
    return out


def fine_tune_accuracy(data: Path, checkpoint: Path | None, vocab_dir: Path, steps: int = 60) -> float:
    """Dev accuracy after `steps` steps on the 300 fine-tuning titles: through the pretrained path
    (the checkpoint's own tokenizer, over raw titles) when `checkpoint`, else from scratch."""
    encoder = training_encoder("bert", "char", str(checkpoint) if checkpoint else None, vocab_dir)
    torch.manual_seed(1)
    backbone = build_backbone("bert", "mini", encoder.vocab_size, MAX_LEN, pretrained=checkpoint,
                              overrides=None if checkpoint else TINY)
    feats, _ = load_features(encoder.input_file(data, "test"), encoder, MAX_LEN, "char", 10)
    dev, _ = load_features(encoder.input_file(data, "dev"), encoder, MAX_LEN, "char", 10)
    return _train(SequenceClassifier(backbone, "bert", 10, 0.0), feats, dev, steps, lr=FINE_TUNE_LR)


def test_fine_tuning_uses_the_checkpoints_weights_and_ids(data, pretrained, tmp_path):
    import copy

    model, vocab, vocab_dir = pretrained
    faithful = export_hub_checkpoint(copy.deepcopy(model), vocab, tmp_path / "faithful", align_rows=True)
    misaligned = export_hub_checkpoint(copy.deepcopy(model), vocab, tmp_path / "misaligned", align_rows=False)
    scratch = fine_tune_accuracy(data, None, vocab_dir)
    good = fine_tune_accuracy(data, faithful, vocab_dir)
    bad = fine_tune_accuracy(data, misaligned, vocab_dir)
    assert good > scratch + 0.2, f"pretrained {good:.3f} vs scratch {scratch:.3f}"
    assert good > bad + 0.2, f"faithful export {good:.3f} vs ids on the wrong rows {bad:.3f}"

"""Ten transformer backbones behind one classification head.

Every backbone is the real transformers class (BertModel, AlbertModel, T5EncoderModel, XLNetModel,
ElectraModel, ErnieModel) or our NezhaModel (transformers 5 dropped NeZha). Two sizes:

- ``base``: the seed's paper configs (768 hidden, 12 layers, 12 heads, 3072 FFN), each with its
  family's own structure, and the hub checkpoints they were pre-trained as (PRETRAINED_CHECKPOINTS).
- ``mini``: the same families scaled down to train from scratch on a laptop CPU, over the project's
  own vocabulary. The family traits are kept, only the shape shrinks.

roberta / macbert / mengzi are BERT-architecture checkpoints (chinese-roberta-wwm-ext,
chinese-macbert-base, mengzi-bert-base all ship `model_type: bert`): they are BertModel, and what
tells them apart is only their pre-trained weights. At ``mini`` size, trained from scratch, they are
therefore the same network as ``bert`` (same seed -> same numbers).

Sentence vector per family (what `SequenceClassifier.pooled` returns):

- BERT family (bert, roberta, macbert, mengzi), albert, ernie, nezha: the pooler output,
  tanh(W h_[CLS] + b). Their pre-training (NSP / SOP) trained exactly this vector as a sentence
  summary, and it is what the seed's classifiers read.
- electra: the discriminator has no pooler; the [CLS] token's last hidden state (what
  ElectraForSequenceClassification reads too).
- xlnet: the last *real* token (XLNet's summary_type "last"). XLNet's tokenizer pads on the left so
  that the final <cls> sits at position -1; we find the last non-pad position from the attention
  mask, which is the same token under either padding side.
- t5: mean over non-pad tokens of the encoder output. T5 has no [CLS] and no pooler, and was never
  trained to summarise into one token; mean pooling is what Sentence-T5 found best for encoders.
"""
from __future__ import annotations

import dataclasses
import importlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput

from zhbench.io import BadInputError, atomic_dir, read_json, write_json

BACKBONES: tuple[str, ...] = (
    "bert", "albert", "t5", "xlnet", "electra", "roberta", "macbert", "ernie", "mengzi", "nezha",
)

# The checkpoints the seed fine-tuned, as hub ids. Data, not logic: a local directory given as
# `backbones.<name>.pretrained` in params.yaml replaces them.
PRETRAINED_CHECKPOINTS: dict[str, str] = {
    "bert": "bert-base-chinese",
    "albert": "voidful/albert_chinese_base",
    # the seed's "t5-base-chinese" is an mT5-base pruned to a 50k Chinese vocab (model_type mt5,
    # gated-gelu, d_ff 2048); uer/t5-v1_1-base-chinese-cluecorpussmall is the other common choice
    "t5": "lemon234071/t5-base-Chinese",
    "xlnet": "hfl/chinese-xlnet-base",
    "electra": "hfl/chinese-electra-base-discriminator",
    "roberta": "hfl/chinese-roberta-wwm-ext",
    "macbert": "hfl/chinese-macbert-base",
    "ernie": "nghuyong/ernie-3.0-base-zh",
    "mengzi": "Langboat/mengzi-bert-base",
    "nezha": "sijunhe/nezha-cn-base",
}

Size = Literal["mini", "base"]
SIZES: tuple[str, ...] = ("mini", "base")


@dataclass(frozen=True)
class Family:
    """One backbone family: its transformers classes, by name, and the token its head reads.

    The classes are imported on first use: importing one transformers model module costs about a
    second, and a stage needs one family, not ten."""

    model_name: str
    config_name: str
    pooling: Literal["pooler", "first", "last", "mean"]  # see the module docstring
    module: str = "transformers"  # NeZha lives in zhbench.models.nezha (transformers 5 dropped it)

    @property
    def model_class(self) -> type[PreTrainedModel]:
        return getattr(importlib.import_module(self.module), self.model_name)

    @property
    def config_class(self) -> type[PretrainedConfig]:
        return getattr(importlib.import_module(self.module), self.config_name)


FAMILIES: dict[str, Family] = {
    "bert": Family("BertModel", "BertConfig", "pooler"),
    "roberta": Family("BertModel", "BertConfig", "pooler"),
    "macbert": Family("BertModel", "BertConfig", "pooler"),
    "mengzi": Family("BertModel", "BertConfig", "pooler"),
    "albert": Family("AlbertModel", "AlbertConfig", "pooler"),
    "ernie": Family("ErnieModel", "ErnieConfig", "pooler"),
    "nezha": Family("NezhaModel", "NezhaConfig", "pooler", "zhbench.models.nezha"),
    "electra": Family("ElectraModel", "ElectraConfig", "first"),
    "xlnet": Family("XLNetModel", "XLNetConfig", "last"),
    "t5": Family("T5EncoderModel", "T5Config", "mean"),
}


class PretrainedUnavailableError(RuntimeError):
    """A pretrained checkpoint could not be loaded (offline, missing directory, missing files)."""


def family_of(name: str) -> Family:
    """The family record of a backbone; unknown names fail with the list of known ones."""
    if name not in FAMILIES:
        raise ValueError(f"unknown backbone {name!r}; known backbones: {', '.join(BACKBONES)}")
    return FAMILIES[name]


# --------------------------------------------------------------------------------------------------
# Configs: a shared shape, then each family's own structure on top of it


@dataclass
class Shape:
    """The size knobs every family shares, under BERT's names (overrides may use these names)."""

    vocab_size: int
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int  # the FFN width of a plain (non-gated) FFN; T5 derives its own from it
    max_position_embeddings: int  # size of a learned position table (ignored by t5/xlnet/nezha)


SHAPE_KEYS = tuple(f.name for f in dataclasses.fields(Shape))

# The seed's paper configs: BERT-base everywhere, with each checkpoint's own vocab / position table.
BASE_VOCAB = {"xlnet": 32000, "t5": 50000, "ernie": 40000}  # the rest: 21128 (BERT Chinese vocab)
BASE_POSITIONS = {"ernie": 2048}  # the rest: 512

# mini: from scratch on a shared CPU. L=4, H=128, A=2 (64-d heads, as in base), FFN 4H is a point
# of the compact-BERT grid of Turc et al. (2019, "Well-Read Students Learn Better"): ~0.8M encoder
# parameters, about 4x cheaper per step than their 256-wide BERT-mini, and still 4 layers deep so
# FastBERT has exits to choose from. Override via `overrides` (hidden_size, num_hidden_layers, ...).
MINI_POSITIONS = 128  # a from-scratch mini backbone's position table: its max_len, at least this
MINI_SHAPE = dict(hidden_size=128, num_hidden_layers=4, num_attention_heads=2, intermediate_size=512)

# Canonical (BERT) names -> the native config attribute, where a family spells it differently.
ALIASES: dict[str, dict[str, str]] = {
    "t5": {"hidden_dropout_prob": "dropout_rate"},
    "xlnet": {"hidden_dropout_prob": "dropout"},
}


def _family_kwargs(name: str, size: str, s: Shape) -> dict[str, Any]:
    """Config kwargs for one family at a given shape: where each family's real structure lives."""
    bert_like = dict(
        vocab_size=s.vocab_size,
        hidden_size=s.hidden_size,
        num_hidden_layers=s.num_hidden_layers,
        num_attention_heads=s.num_attention_heads,
        intermediate_size=s.intermediate_size,
        max_position_embeddings=s.max_position_embeddings,
        type_vocab_size=2,
        hidden_act="gelu",
        pad_token_id=0,
    )
    if name in ("bert", "roberta", "macbert", "mengzi"):
        return bert_like
    if name == "albert":
        # factorised embedding (E < H: 128 in base, H/2 in mini) and one layer group shared by all
        # layers; the Chinese ALBERT (brightmart / voidful) uses relu and no dropout
        embedding_size = 128 if size == "base" else max(1, s.hidden_size // 2)
        return {**bert_like, "embedding_size": embedding_size, "num_hidden_groups": 1, "inner_group_num": 1,
                "hidden_act": "relu", "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0,
                "classifier_dropout_prob": 0.1}
    if name == "electra":
        # the discriminator; base's embedding is as wide as its hidden state, ELECTRA-small's is half
        # as wide (128 for 256) and projected up by embeddings_project: mini does the same
        return {**bert_like, "embedding_size": s.hidden_size if size == "base" else max(1, s.hidden_size // 2)}
    if name == "ernie":
        # ERNIE 3.0: 4 segment types, a task-type embedding (3 types, id 0 for classification)
        return {**bert_like, "type_vocab_size": 4, "task_type_vocab_size": 3, "use_task_id": True,
                "layer_norm_eps": 1e-5}
    if name == "nezha":
        # no absolute positions; functional relative encoding clipped at +-64
        return {**bert_like, "max_relative_position": 64}
    if name == "xlnet":
        # two-stream relative attention in its bidirectional form; hfl's Chinese XLNet uses relu
        return dict(
            vocab_size=s.vocab_size, d_model=s.hidden_size, n_layer=s.num_hidden_layers,
            n_head=s.num_attention_heads, d_head=s.hidden_size // s.num_attention_heads,
            d_inner=s.intermediate_size, ff_activation="relu", attn_type="bi", mem_len=None,
            untie_r=True, bi_data=False, clamp_len=-1, layer_norm_eps=1e-12, dropout=0.1,
            summary_type="last", pad_token_id=5 if size == "base" else 0,
            bos_token_id=1 if size == "base" else None, eos_token_id=2 if size == "base" else None,
        )
    if name == "t5":
        # mT5 style (T5 v1.1): gated-GELU FFN, relative attention bias in 32 log buckets, RMSNorm,
        # untied embeddings. A gated FFN has three matrices, so d_ff = 2/3 of a plain FFN's width
        # keeps the parameter count (and is exactly mT5-base's 2048 for 3072).
        return dict(
            vocab_size=s.vocab_size, d_model=s.hidden_size, num_layers=s.num_hidden_layers,
            num_heads=s.num_attention_heads, d_kv=s.hidden_size // s.num_attention_heads,
            d_ff=s.intermediate_size * 2 // 3, feed_forward_proj="gated-gelu",
            relative_attention_num_buckets=32, relative_attention_max_distance=128,
            dropout_rate=0.1, layer_norm_epsilon=1e-6, tie_word_embeddings=False,
            pad_token_id=0, eos_token_id=1 if size == "base" else None,
        )
    raise AssertionError(name)  # family_of() has already rejected unknown names


def _positive_int(name: str, key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"backbone {name}: {key} must be a positive integer, got {value!r}")
    return value


def build_config(
    name: str,
    size: Size,
    vocab_size: int | None,
    max_positions: int,
    overrides: dict[str, Any] | None = None,
) -> PretrainedConfig:
    """The config of backbone `name` at `size`, validated before anything is trained.

    vocab_size: required for mini (the project's vocab); for base it replaces the checkpoint's.
    max_positions: the longest input. mini sizes its position table to it; base keeps the
        checkpoint's table (512, ERNIE 2048) and only checks that max_positions fits.
    overrides: config values to change. The shared shape keys (SHAPE_KEYS: hidden_size,
        num_hidden_layers, num_attention_heads, intermediate_size, ...) work for every family and
        keep derived sizes consistent (T5 d_kv/d_ff, XLNet d_head); any other key must be a field
        of that family's config class (e.g. embedding_size, max_relative_position, dropout_rate).
    """
    fam = family_of(name)
    if size not in SIZES:
        raise ValueError(f"unknown size {size!r} for backbone {name}; sizes: {', '.join(SIZES)}")
    overrides = dict(overrides or {})
    for canonical, native in ALIASES.get(name, {}).items():
        if canonical in overrides:
            overrides[native] = overrides.pop(canonical)
    _positive_int(name, "max_positions", max_positions)

    if size == "mini":
        if vocab_size is None:
            raise ValueError(f"backbone {name}: size 'mini' needs vocab_size (the project's vocabulary size)")
        shape = Shape(vocab_size=vocab_size, max_position_embeddings=max_positions, **MINI_SHAPE)
    else:
        shape = Shape(
            vocab_size=vocab_size if vocab_size is not None else BASE_VOCAB.get(name, 21128),
            hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
            max_position_embeddings=BASE_POSITIONS.get(name, 512),
        )
    if size == "mini" and "hidden_size" in overrides and "intermediate_size" not in overrides:
        shape.intermediate_size = 4 * overrides["hidden_size"]  # mini keeps BERT's 4x FFN ratio
    for key in SHAPE_KEYS:
        if key in overrides:
            setattr(shape, key, overrides.pop(key))
    for key in SHAPE_KEYS:
        _positive_int(name, key, getattr(shape, key))
    if shape.hidden_size % shape.num_attention_heads != 0:
        raise ValueError(
            f"backbone {name}: hidden_size {shape.hidden_size} is not divisible by "
            f"num_attention_heads {shape.num_attention_heads}"
        )
    if name not in ("t5", "xlnet", "nezha") and max_positions > shape.max_position_embeddings:
        raise ValueError(
            f"backbone {name}: max_len {max_positions} exceeds its position table "
            f"({shape.max_position_embeddings} positions)"
        )

    kwargs = _family_kwargs(name, size, shape)
    known = {f.name for f in dataclasses.fields(fam.config_class)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(
            f"backbone {name}: unknown config override(s) {unknown}; use one of the shared keys "
            f"{list(SHAPE_KEYS)} or a field of {fam.config_class.__name__}"
        )
    kwargs.update(overrides)
    try:
        return fam.config_class(**kwargs)
    except (TypeError, ValueError) as e:  # transformers' strict validation, with our context
        raise ValueError(f"backbone {name}: invalid config: {e}") from e


# --------------------------------------------------------------------------------------------------
# Backbones: random init from a config, or a pretrained checkpoint


def build_backbone(
    name: str,
    size: Size = "mini",
    vocab_size: int | None = None,
    max_positions: int = 128,
    pretrained: str | os.PathLike | None = None,
    overrides: dict[str, Any] | None = None,
) -> PreTrainedModel:
    """Backbone `name`: randomly initialised from build_config, or loaded from `pretrained`.

    pretrained: a local directory (tried first) or a hub id. Offline, or with a missing directory
    or missing files, this raises PretrainedUnavailableError saying what was tried and how to
    point at a local copy. With `pretrained`, size and vocab_size are ignored (the checkpoint's
    config.json is the truth) and max_positions is only checked against its position table.
    Seed torch first: random init draws from the global generator.
    """
    fam = family_of(name)
    if pretrained is None:
        return fam.model_class(build_config(name, size, vocab_size, max_positions, overrides))
    model = load_pretrained(name, pretrained, overrides)
    table = getattr(model.config, "max_position_embeddings", None)
    if name not in ("t5", "xlnet", "nezha") and table is not None and max_positions > table:
        raise ValueError(f"backbone {name}: max_len {max_positions} exceeds the checkpoint's {table} positions")
    return model


def _download_hint(name: str, source: str) -> str:
    hub_id = source if _looks_like_hub_id(source) else PRETRAINED_CHECKPOINTS.get(name, "<hub-id>")
    return (
        f"To use a local copy: on a machine with network run\n"
        f"    hf download {hub_id} --local-dir DIR\n"
        f"(older huggingface_hub: huggingface-cli download {hub_id} --local-dir DIR), copy DIR here "
        f"and set `backbones.{name}.pretrained: DIR` in params.yaml."
    )


def _looks_like_hub_id(source: str) -> bool:
    """'bert-base-chinese' or 'hfl/chinese-macbert-base'; not './x', '/abs/x', '~/x' or 'a/b/c'."""
    return not source.startswith((".", "/", "~", "\\")) and source.count("/") <= 1 and os.sep == "/"


WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")


def load_pretrained(name: str, source: str | os.PathLike, overrides: dict[str, Any] | None = None) -> PreTrainedModel:
    """from_pretrained for one backbone family; every failure becomes one PretrainedUnavailableError."""
    fam = family_of(name)
    source = str(source)
    kwargs = dict(overrides or {})
    for canonical, native in ALIASES.get(name, {}).items():
        if canonical in kwargs:
            kwargs[native] = kwargs.pop(canonical)
    shape_changes = sorted(set(kwargs) & (set(SHAPE_KEYS) - {"max_position_embeddings"}))
    if shape_changes:
        raise ValueError(f"backbone {name}: cannot change {shape_changes} of a pretrained checkpoint ({source})")

    def fail(tried: str, cause: BaseException | None = None) -> PretrainedUnavailableError:
        msg = (f"cannot load pretrained backbone {name!r} from {source!r}.\nTried: {tried}\n"
               + _download_hint(name, source))
        err = PretrainedUnavailableError(msg)
        err.__cause__ = cause
        return err

    local = Path(source).expanduser()
    if local.is_dir():
        if not (local / "config.json").is_file():
            raise fail(f"local directory {local}: no config.json in it")
        if not any((local / f).is_file() for f in WEIGHT_FILES):
            raise fail(f"local directory {local}: no weights file (expected one of {', '.join(WEIGHT_FILES)})")
        try:
            return fam.model_class.from_pretrained(str(local), local_files_only=True, **kwargs)
        except OSError as e:
            raise fail(f"local directory {local}: {e}", e) from e
    if not _looks_like_hub_id(source):
        raise fail(f"local directory {local}: does not exist")
    # A hub id: the HF cache (and, when online, the hub). Offline (HF_HUB_OFFLINE=1) only the cache.
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
    try:
        return fam.model_class.from_pretrained(source, local_files_only=offline, **kwargs)
    except OSError as e:  # transformers reports hub / network / cache misses as OSError
        where = "the local Hugging Face cache (HF_HUB_OFFLINE is set)" if offline else "the Hugging Face hub and cache"
        raise fail(f"no local directory named {source!r}; {where}: {e}", e) from e


# --------------------------------------------------------------------------------------------------
# One classification head for every backbone


class ClassificationHead(nn.Module):
    """dropout + linear over the sentence vector: the one head every backbone shares."""

    def __init__(self, hidden_size: int, num_labels: int, dropout: float = 0.1, init_std: float = 0.02):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(hidden_size, num_labels)
        # BERT's classifier init: small normal weights, zero bias (logits start near uniform)
        nn.init.normal_(self.out.weight, std=init_std)
        nn.init.zeros_(self.out.bias)

    def forward(self, sentence: torch.Tensor) -> torch.Tensor:
        return self.out(self.dropout(sentence))


class SequenceClassifier(nn.Module):
    """backbone -> sentence vector (per family, see module docstring) -> dropout -> linear."""

    def __init__(self, backbone: PreTrainedModel, family: str, num_labels: int, dropout: float = 0.1):
        super().__init__()
        self.family = family
        self.pooling = family_of(family).pooling
        self.num_labels = num_labels
        self.dropout_p = dropout
        self.backbone = backbone
        config = backbone.config
        self.head = ClassificationHead(
            config.hidden_size, num_labels, dropout, init_std=getattr(config, "initializer_range", None) or 0.02
        )
        self.hidden_size: int = config.hidden_size
        self.num_layers: int = config.num_hidden_layers  # = len(hidden_states_per_layer(...))

    def _encode(self, input_ids, attention_mask, token_type_ids=None, output_hidden_states=False):
        kwargs: dict[str, Any] = dict(input_ids=input_ids, attention_mask=attention_mask)
        if token_type_ids is not None and self.family != "t5":  # T5 has no segment embedding
            kwargs["token_type_ids"] = token_type_ids
        if self.family == "ernie" and getattr(self.backbone.config, "use_task_id", False):
            kwargs["task_type_ids"] = torch.zeros_like(input_ids)  # task 0: the fine-tuning task
        return self.backbone(**kwargs, output_hidden_states=output_hidden_states, return_dict=True)

    def _select(self, states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(batch, len, hidden) -> (batch, hidden) by the family's token rule (no pooler)."""
        if self.pooling == "mean":
            m = attention_mask.to(states.dtype).unsqueeze(-1)
            return (states * m).sum(1) / m.sum(1).clamp(min=1.0)
        if self.pooling == "last":
            # last position whose mask is 1: the final real token under right or left padding
            pos = torch.arange(states.shape[1], device=states.device)
            last = (attention_mask.long() * (pos + 1)).argmax(dim=1)
            return states[torch.arange(states.shape[0], device=states.device), last]
        return states[:, 0]  # [CLS]

    def pooled(self, input_ids, attention_mask, token_type_ids=None) -> torch.Tensor:
        """The sentence vector the head reads, (batch, hidden)."""
        out = self._encode(input_ids, attention_mask, token_type_ids)
        if self.pooling == "pooler":
            return out.pooler_output
        return self._select(out.last_hidden_state, attention_mask)

    def forward(self, input_ids, attention_mask, token_type_ids=None, labels=None) -> SequenceClassifierOutput:
        """logits (batch, num_labels), and with `labels` the mean cross-entropy as `loss` (what
        zhbench.fit trains on)."""
        logits = self.head(self.pooled(input_ids, attention_mask, token_type_ids))
        loss = None if labels is None else F.cross_entropy(logits, labels)
        return SequenceClassifierOutput(loss=loss, logits=logits)

    def hidden_states_per_layer(self, input_ids, attention_mask, token_type_ids=None) -> list[torch.Tensor]:
        """The token states (batch, len, hidden) after each transformer layer (embedding output
        excluded), for FastBERT's per-layer student classifiers. T5's last entry has its final
        RMSNorm applied, the earlier ones do not (pre-LN stack)."""
        return list(self._encode(input_ids, attention_mask, token_type_ids, output_hidden_states=True).hidden_states[1:])


def logits_of(output) -> torch.Tensor:
    """The logits of a classifier call: SequenceClassifier (and its int8 form) returns an output
    with `.logits`; the TextCNN student and an ONNX session return the tensor itself."""
    return output if isinstance(output, torch.Tensor) else output.logits


class LogitsOnly(nn.Module):
    """(input_ids, attention_mask) -> logits tensor: what ONNX export traces."""

    def __init__(self, classifier: nn.Module):
        super().__init__()
        self.classifier = classifier

    def forward(self, input_ids, attention_mask):
        return logits_of(self.classifier(input_ids, attention_mask))


# --------------------------------------------------------------------------------------------------
# Saving and loading a fine-tuned classifier (safetensors only)

HEAD_FILE = "head.safetensors"
META_FILE = "zhbench.json"


def save_classifier(model: SequenceClassifier, out_dir: str | os.PathLike, extra: dict[str, Any] | None = None) -> None:
    """Write `out_dir` atomically (see write_classifier)."""
    with atomic_dir(out_dir) as tmp:
        write_classifier(model, tmp, extra)


def write_classifier(model: SequenceClassifier, directory: str | os.PathLike, extra: dict[str, Any] | None = None) -> None:
    """Into an existing `directory`: backbone (config.json + model.safetensors, loadable with
    AutoModel.from_pretrained), head.safetensors, and zhbench.json (family, num_labels, dropout,
    extra: labels, granularity, max_len ...). `extra` must be JSON-serialisable."""
    from safetensors.torch import save_file

    directory = Path(directory)
    model.backbone.save_pretrained(directory)
    head = {k: v.detach().cpu().contiguous() for k, v in model.head.state_dict().items()}
    save_file(head, str(directory / HEAD_FILE), metadata={"format": "pt"})
    write_json(directory / META_FILE, {
        "family": model.family,
        "num_labels": model.num_labels,
        "dropout": model.dropout_p,
        "extra": extra or {},
    })


def load_classifier(model_dir: str | os.PathLike) -> tuple[SequenceClassifier, dict[str, Any]]:
    """Inverse of save_classifier: (model in eval mode, extra). Reads safetensors only."""
    from safetensors.torch import load_file

    model_dir = Path(model_dir)
    for f in (META_FILE, HEAD_FILE, "config.json", "model.safetensors"):
        if not (model_dir / f).is_file():
            raise BadInputError(model_dir / f, None, "expected a file written by save_classifier; it is missing")
    meta = read_json(model_dir / META_FILE)
    fam = family_of(meta["family"])
    backbone = fam.model_class.from_pretrained(str(model_dir), local_files_only=True, use_safetensors=True)
    model = SequenceClassifier(backbone, meta["family"], int(meta["num_labels"]), float(meta["dropout"]))
    model.head.load_state_dict(load_file(str(model_dir / HEAD_FILE)), strict=True)
    return model.eval(), meta.get("extra", {})


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of distinct parameters (ALBERT's shared layer counts once)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


# --------------------------------------------------------------------------------------------------


@dataclass
class BackboneSpec:
    """One backbone as a stage asks for it (from params.yaml `backbones.<name>`)."""

    name: str
    size: Size = "mini"
    vocab_size: int | None = None
    max_len: int = 128
    overrides: dict[str, Any] = field(default_factory=dict)
    pretrained: str | None = None  # hub id or local directory; None = random init

    def __post_init__(self):
        family_of(self.name)  # unknown names fail when params are read, not when training starts
        if self.size not in SIZES:
            raise ValueError(f"unknown size {self.size!r} for backbone {self.name}; sizes: {', '.join(SIZES)}")

    def config(self) -> PretrainedConfig:
        return build_config(self.name, self.size, self.vocab_size, self.max_len, self.overrides)

    def build(self) -> PreTrainedModel:
        return build_backbone(self.name, self.size, self.vocab_size, self.max_len, self.pretrained, self.overrides)

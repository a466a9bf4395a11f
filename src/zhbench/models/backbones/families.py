"""The family table: what sets each of the ten backbone families apart, and the configs built from it.

Sentence vector per family (`Family.pooling`, what `SequenceClassifier.pooled` returns):

- BERT family (bert, roberta, macbert, mengzi), albert, ernie, nezha: the pooler output,
  tanh(W h_[CLS] + b). Their pre-training (NSP / SOP) trained exactly this vector as a sentence
  summary, and it is what the write-ups' classifiers read.
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
from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Mapping

import torch
from transformers import PretrainedConfig, PreTrainedModel

BACKBONES: tuple[str, ...] = (
    "bert", "albert", "t5", "xlnet", "electra", "roberta", "macbert", "ernie", "mengzi", "nezha",
)

Size = Literal["mini", "base"]
SIZES: tuple[str, ...] = ("mini", "base")


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


# --------------------------------------------------------------------------------------------------
# Each family's config structure at a given shape: where its real architecture lives


def _bert_kwargs(size: str, s: Shape) -> dict[str, Any]:
    return dict(
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


def _albert_kwargs(size: str, s: Shape) -> dict[str, Any]:
    # factorised embedding (E < H: 128 in base, H/2 in mini) and one layer group shared by all
    # layers; the Chinese ALBERT (brightmart / voidful) uses relu and no dropout
    embedding_size = 128 if size == "base" else max(1, s.hidden_size // 2)
    return {**_bert_kwargs(size, s), "embedding_size": embedding_size, "num_hidden_groups": 1,
            "inner_group_num": 1, "hidden_act": "relu", "hidden_dropout_prob": 0.0,
            "attention_probs_dropout_prob": 0.0, "classifier_dropout_prob": 0.1}


def _electra_kwargs(size: str, s: Shape) -> dict[str, Any]:
    # the discriminator; base's embedding is as wide as its hidden state, ELECTRA-small's is half
    # as wide (128 for 256) and projected up by embeddings_project: mini does the same
    return {**_bert_kwargs(size, s),
            "embedding_size": s.hidden_size if size == "base" else max(1, s.hidden_size // 2)}


def _ernie_kwargs(size: str, s: Shape) -> dict[str, Any]:
    # ERNIE 3.0: 4 segment types, a task-type embedding (3 types, id 0 for classification)
    return {**_bert_kwargs(size, s), "type_vocab_size": 4, "task_type_vocab_size": 3, "use_task_id": True,
            "layer_norm_eps": 1e-5}


def _nezha_kwargs(size: str, s: Shape) -> dict[str, Any]:
    # no absolute positions; functional relative encoding clipped at +-64
    return {**_bert_kwargs(size, s), "max_relative_position": 64}


def _xlnet_kwargs(size: str, s: Shape) -> dict[str, Any]:
    # two-stream relative attention in its bidirectional form; hfl's Chinese XLNet uses relu
    return dict(
        vocab_size=s.vocab_size, d_model=s.hidden_size, n_layer=s.num_hidden_layers,
        n_head=s.num_attention_heads, d_head=s.hidden_size // s.num_attention_heads,
        d_inner=s.intermediate_size, ff_activation="relu", attn_type="bi", mem_len=None,
        untie_r=True, bi_data=False, clamp_len=-1, layer_norm_eps=1e-12, dropout=0.1,
        summary_type="last", pad_token_id=5 if size == "base" else 0,
        bos_token_id=1 if size == "base" else None, eos_token_id=2 if size == "base" else None,
    )


def _t5_kwargs(size: str, s: Shape) -> dict[str, Any]:
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


# --------------------------------------------------------------------------------------------------
# The table


@dataclass(frozen=True)
class Family:
    """One backbone family: its transformers classes, by name, and the traits that set it apart.

    The classes are imported on first use: importing one transformers model module costs about a
    second, and a stage needs one family, not ten."""

    model_name: str
    config_name: str
    pooling: Literal["pooler", "first", "last", "mean"]  # see the module docstring
    config_kwargs: Callable[[str, Shape], dict[str, Any]]  # (size, shape) -> config class kwargs
    module: str = "transformers"  # NeZha lives in zhbench.models.nezha (transformers 5 dropped it)
    learned_positions: bool = True  # a learned absolute position table bounds the input length
    segment_ids: bool = True  # reads token_type_ids (T5 has no segment embedding)
    task_ids: bool = False  # ERNIE 3.0's task-type embedding (when its config has use_task_id)
    # canonical (BERT) config names -> the family's own, where it spells them differently
    aliases: Mapping[str, str] = field(default_factory=dict)
    # the write-ups' paper configs: each checkpoint's own vocabulary and position table
    base_vocab_size: int = 21128  # BERT's Chinese vocabulary
    base_positions: int = 512

    @property
    def model_class(self) -> type[PreTrainedModel]:
        return getattr(importlib.import_module(self.module), self.model_name)

    @property
    def config_class(self) -> type[PretrainedConfig]:
        return getattr(importlib.import_module(self.module), self.config_name)

    def native(self, overrides: Mapping[str, Any]) -> dict[str, Any]:
        """`overrides` with each canonical (BERT) key renamed to this family's own config name."""
        out = dict(overrides)
        for canonical, native in self.aliases.items():
            if canonical in out:
                out[native] = out.pop(canonical)
        return out

    def inputs(self, backbone: PreTrainedModel, input_ids: torch.Tensor, attention_mask: torch.Tensor,
               token_type_ids: torch.Tensor | None = None) -> dict[str, Any]:
        """The keyword arguments of a backbone call over one batch, as this family reads them."""
        kwargs: dict[str, Any] = dict(input_ids=input_ids, attention_mask=attention_mask)
        if token_type_ids is not None and self.segment_ids:
            kwargs["token_type_ids"] = token_type_ids
        if self.task_ids and getattr(backbone.config, "use_task_id", False):
            kwargs["task_type_ids"] = torch.zeros_like(input_ids)  # task 0: the fine-tuning task
        return kwargs


FAMILIES: dict[str, Family] = {
    "bert": Family("BertModel", "BertConfig", "pooler", _bert_kwargs),
    "roberta": Family("BertModel", "BertConfig", "pooler", _bert_kwargs),
    "macbert": Family("BertModel", "BertConfig", "pooler", _bert_kwargs),
    "mengzi": Family("BertModel", "BertConfig", "pooler", _bert_kwargs),
    "albert": Family("AlbertModel", "AlbertConfig", "pooler", _albert_kwargs),
    "ernie": Family("ErnieModel", "ErnieConfig", "pooler", _ernie_kwargs, task_ids=True,
                    base_vocab_size=40000, base_positions=2048),
    "nezha": Family("NezhaModel", "NezhaConfig", "pooler", _nezha_kwargs, "zhbench.models.nezha",
                    learned_positions=False),
    "electra": Family("ElectraModel", "ElectraConfig", "first", _electra_kwargs),
    "xlnet": Family("XLNetModel", "XLNetConfig", "last", _xlnet_kwargs, learned_positions=False,
                    aliases={"hidden_dropout_prob": "dropout"}, base_vocab_size=32000),
    "t5": Family("T5EncoderModel", "T5Config", "mean", _t5_kwargs, learned_positions=False, segment_ids=False,
                 aliases={"hidden_dropout_prob": "dropout_rate"}, base_vocab_size=50000),
}


def family_of(name: str) -> Family:
    """The family record of a backbone; unknown names fail with the list of known ones."""
    if name not in FAMILIES:
        raise ValueError(f"unknown backbone {name!r}; known backbones: {', '.join(BACKBONES)}")
    return FAMILIES[name]


# --------------------------------------------------------------------------------------------------
# Configs: a shared shape, then each family's own structure on top of it

# mini: from scratch on a shared CPU. L=4, H=128, A=2 (64-d heads, as in base), FFN 4H is a point
# of the compact-BERT grid of Turc et al. (2019, "Well-Read Students Learn Better"): ~0.8M encoder
# parameters, about 4x cheaper per step than their 256-wide BERT-mini, and still 4 layers deep so
# FastBERT has exits to choose from. Override via `overrides` (hidden_size, num_hidden_layers, ...).
MINI_POSITIONS = 128  # a from-scratch mini backbone's position table: its max_len, at least this
MINI_SHAPE = dict(hidden_size=128, num_hidden_layers=4, num_attention_heads=2, intermediate_size=512)


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
    overrides = fam.native(overrides or {})
    _positive_int(name, "max_positions", max_positions)

    if size == "mini":
        if vocab_size is None:
            raise ValueError(f"backbone {name}: size 'mini' needs vocab_size (the project's vocabulary size)")
        shape = Shape(vocab_size=vocab_size, max_position_embeddings=max_positions, **MINI_SHAPE)
    else:
        shape = Shape(
            vocab_size=vocab_size if vocab_size is not None else fam.base_vocab_size,
            hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
            max_position_embeddings=fam.base_positions,
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
    if fam.learned_positions and max_positions > shape.max_position_embeddings:
        raise ValueError(
            f"backbone {name}: max_len {max_positions} exceeds its position table "
            f"({shape.max_position_embeddings} positions)"
        )

    kwargs = fam.config_kwargs(size, shape)
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

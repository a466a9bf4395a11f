"""A backbone as a stage asks for it: randomly initialised from its config, or a pretrained checkpoint
from a local directory or the Hugging Face hub."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from transformers import PreTrainedModel

from zhbench.models.backbones.families import SHAPE_KEYS, Size, build_config, family_of

# The checkpoints the write-ups fine-tuned, as hub ids. Data, not logic: a local directory given as
# `backbones.<name>.pretrained` in params.yaml replaces them.
PRETRAINED_CHECKPOINTS: dict[str, str] = {
    "bert": "bert-base-chinese",
    "albert": "voidful/albert_chinese_base",
    # the write-ups' "t5-base-chinese" is an mT5-base pruned to a 50k Chinese vocab (model_type mt5,
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

WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")


class PretrainedUnavailableError(RuntimeError):
    """A pretrained checkpoint could not be loaded (offline, missing directory, missing files)."""


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
    if fam.learned_positions and table is not None and max_positions > table:
        raise ValueError(f"backbone {name}: max_len {max_positions} exceeds the checkpoint's {table} positions")
    return model


def download_hint(name: str, source: str) -> str:
    """How to fetch `source` (or family `name`'s usual checkpoint) on a machine with network."""
    hub_id = source if looks_like_hub_id(source) else PRETRAINED_CHECKPOINTS.get(name, "<hub-id>")
    return (
        f"To use a local copy: on a machine with network run\n"
        f"    hf download {hub_id} --local-dir DIR\n"
        f"(older huggingface_hub: huggingface-cli download {hub_id} --local-dir DIR), copy DIR here "
        f"and set `backbones.{name}.pretrained: DIR` in params.yaml."
    )


def looks_like_hub_id(source: str) -> bool:
    """'bert-base-chinese' or 'hfl/chinese-macbert-base'; not './x', '/abs/x', '~/x' or 'a/b/c'."""
    return not source.startswith((".", "/", "~", "\\")) and source.count("/") <= 1 and os.sep == "/"


def load_pretrained(name: str, source: str | os.PathLike, overrides: dict[str, Any] | None = None) -> PreTrainedModel:
    """from_pretrained for one backbone family; every failure becomes one PretrainedUnavailableError."""
    fam = family_of(name)
    source = str(source)
    kwargs = fam.native(overrides or {})
    shape_changes = sorted(set(kwargs) & (set(SHAPE_KEYS) - {"max_position_embeddings"}))
    if shape_changes:
        raise ValueError(f"backbone {name}: cannot change {shape_changes} of a pretrained checkpoint ({source})")

    def fail(tried: str, cause: BaseException | None = None) -> PretrainedUnavailableError:
        msg = (f"cannot load pretrained backbone {name!r} from {source!r}.\nTried: {tried}\n"
               + download_hint(name, source))
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
    if not looks_like_hub_id(source):
        raise fail(f"local directory {local}: does not exist")
    # A hub id: the HF cache (and, when online, the hub). Offline (HF_HUB_OFFLINE=1) only the cache.
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
    try:
        return fam.model_class.from_pretrained(source, local_files_only=offline, **kwargs)
    except OSError as e:  # transformers reports hub / network / cache misses as OSError
        where = "the local Hugging Face cache (HF_HUB_OFFLINE is set)" if offline else "the Hugging Face hub and cache"
        raise fail(f"no local directory named {source!r}; {where}: {e}", e) from e

"""The tokenizer a pretrained checkpoint was trained with, chosen by backbone family.

A checkpoint's embedding rows only mean something under its own vocabulary, so a `pretrained:`
backbone must encode with the tokenizer shipped next to its weights. The class comes from the
family, never from AutoTokenizer: from a folder holding only vocab.txt + config.json, AutoTokenizer
reads `model_type` and builds a 5-token AlbertTokenizer for ALBERT-zh (which ships a BERT vocab.txt)
and fails for NeZha, which transformers 5 no longer knows.

What each family ships (hub layout) and how it frames a text:

- bert, roberta, macbert, mengzi, ernie, nezha, electra, albert: WordPiece vocab.txt;
  `[CLS] a [SEP] (b [SEP])`, right padding.
- xlnet: sentencepiece spiece.model; `a <sep> (b <sep>) <cls>`, padded on the LEFT with <pad>
  (id 5 in the Chinese XLNet), so the final <cls> the classifier reads stays next to the text.
- t5: sentencepiece spiece.model; `a </s> (b </s>)`, <pad> = 0, no segment ids.

A tokenizer.json in the folder (what save_pretrained writes) is preferred over vocab.txt /
spiece.model; tokenizer_config.json, when present, supplies the saved settings (do_lower_case,
special tokens). Without it a WordPiece vocab is lower-cased, as Google's Chinese BERT was
pre-trained (its vocab.txt holds no capital letters).
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from transformers import BertTokenizer, PretrainedConfig, T5Tokenizer, XLNetTokenizer
from transformers.tokenization_utils_tokenizers import TokenizersBackend

from zhbench.models.backbones import (
    PretrainedUnavailableError,
    download_hint,
    family_of,
    looks_like_hub_id,
)

TOKENIZER_JSON = "tokenizer.json"
# What a hub snapshot needs for the tokenizer: the serialisation, the vocabulary it may replace,
# and the files holding saved settings and special tokens.
TOKENIZER_FILES = (TOKENIZER_JSON, "vocab.txt", "spiece.model", "tokenizer_config.json",
                   "special_tokens_map.json", "added_tokens.json")


@dataclass(frozen=True)
class TokenizerScheme:
    """How one family's checkpoints ship and frame their tokenizer."""

    tokenizer_class: type[TokenizersBackend]
    vocab_file: str                 # what a hub repo of the family holds when it has no tokenizer.json
    padding_side: str
    model_input_names: tuple[str, ...]


_WORDPIECE = TokenizerScheme(BertTokenizer, "vocab.txt", "right",
                             ("input_ids", "token_type_ids", "attention_mask"))

TOKENIZER_SCHEMES: dict[str, TokenizerScheme] = {
    **{name: _WORDPIECE for name in
       ("bert", "roberta", "macbert", "mengzi", "ernie", "nezha", "electra", "albert")},
    # XLNet's relative segment encoding reads token_type_ids (<cls> has its own segment, 2), so
    # they are returned even though transformers 5's XLNetTokenizer no longer lists them.
    "xlnet": TokenizerScheme(XLNetTokenizer, "spiece.model", "left",
                             ("input_ids", "token_type_ids", "attention_mask")),
    "t5": TokenizerScheme(T5Tokenizer, "spiece.model", "right", ("input_ids", "attention_mask")),
}


class VocabularyMismatchError(ValueError):
    """The tokenizer's ids do not fit the checkpoint's embedding table."""


def tokenizer_scheme(family: str) -> TokenizerScheme:
    family_of(family)  # unknown names fail with the list of known backbones
    return TOKENIZER_SCHEMES[family]


def load_checkpoint_tokenizer(family: str, source: str | os.PathLike) -> TokenizersBackend:
    """The tokenizer of the checkpoint at `source` (a local directory, or a hub id), as the
    family's transformers class. Every failure is one PretrainedUnavailableError saying what was
    looked for and how to point at a local copy."""
    scheme = tokenizer_scheme(family)
    source = str(source)
    local = Path(source).expanduser()
    if local.is_dir():
        return _load_directory(family, scheme, local, source)
    if not looks_like_hub_id(source):
        raise _unavailable(family, source, f"local directory {local}: does not exist")
    # Resolve the hub id to files first: the tokenizer classes' own from_pretrained, offline and
    # without a cached copy, silently builds a tokenizer of the special tokens alone.
    from huggingface_hub import snapshot_download

    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
    try:
        snapshot = snapshot_download(source, allow_patterns=list(TOKENIZER_FILES), local_files_only=offline)
    except OSError as e:  # huggingface_hub reports cache misses and network failures as OSError
        where = ("the local Hugging Face cache (HF_HUB_OFFLINE is set)" if offline
                 else "the Hugging Face hub and cache")
        raise _unavailable(family, source, f"no local directory named {source!r}; {where}: {e}", e) from e
    return _load_directory(family, scheme, Path(snapshot), source)


def _load_directory(family: str, scheme: TokenizerScheme, directory: Path, source: str) -> TokenizersBackend:
    looked_for = (TOKENIZER_JSON, scheme.vocab_file)
    found = [name for name in looked_for if (directory / name).is_file()]
    if not found:
        raise _unavailable(family, source, f"directory {directory}: neither {' nor '.join(looked_for)} "
                                           f"(the {family} tokenizer needs one of them)")
    if found == ["spiece.model"]:
        _check_sentencepiece(family, source, directory / "spiece.model")
    # The family's padding side and input names win over a saved tokenizer_config: the pooling
    # rule and the model's forward are written for them.
    try:
        tokenizer = scheme.tokenizer_class.from_pretrained(
            str(directory), local_files_only=True, padding_side=scheme.padding_side,
            model_input_names=list(scheme.model_input_names))
    except (OSError, ValueError) as e:
        raise _unavailable(family, source, f"directory {directory}: {e}", e) from e
    if not set(tokenizer.get_vocab()) - set(tokenizer.all_special_tokens):
        raise _unavailable(family, source, f"directory {directory}: the tokenizer read from {found[0]} "
                                           "holds no token but its special ones")
    return tokenizer


def _check_sentencepiece(family: str, source: str, model_file: Path) -> None:
    """Read spiece.model here: transformers, failing to, falls back to reading it as a tiktoken
    file and reports that instead."""
    import sentencepiece

    try:
        sentencepiece.SentencePieceProcessor(model_file=str(model_file))
    except (OSError, RuntimeError) as e:
        raise _unavailable(family, source, f"{model_file}: not a sentencepiece model ({e})", e) from e


def _unavailable(family: str, source: str, tried: str,
                 cause: BaseException | None = None) -> PretrainedUnavailableError:
    err = PretrainedUnavailableError(
        f"cannot load the tokenizer of pretrained backbone {family!r} from {source!r}.\n"
        f"Tried: {tried}\n" + download_hint(family, source))
    err.__cause__ = cause
    return err


def check_vocab_fits(config: PretrainedConfig, tokenizer: TokenizersBackend) -> None:
    """Fail before training when the tokenizer's ids would index past, or pad with a different
    row than, the checkpoint's embedding table."""
    problems = []
    max_id = max(tokenizer.get_vocab().values())
    if max_id >= config.vocab_size:
        problems.append(f"the tokenizer's largest id is {max_id} ({len(tokenizer)} tokens), but the "
                        f"embedding table has {config.vocab_size} rows")
    if tokenizer.pad_token_id is None:
        problems.append("the tokenizer has no pad token")
    elif config.pad_token_id is not None and tokenizer.pad_token_id != config.pad_token_id:
        problems.append(f"the tokenizer pads with id {tokenizer.pad_token_id} ({tokenizer.pad_token}), "
                        f"the model with pad_token_id {config.pad_token_id}")
    if problems:
        raise VocabularyMismatchError(
            f"tokenizer {tokenizer.name_or_path!r} does not fit model config ({config.model_type}): "
            + "; ".join(problems) + ". Load both from the same checkpoint directory.")


def tokenizer_fingerprint(tokenizer: TokenizersBackend) -> str:
    """sha256 over everything that decides the ids a tokenizer produces: the backend's JSON
    (vocabulary, normaliser, pre-tokeniser, framing, added tokens) and the Python-side settings
    (class, padding side, input names, special-token roles). Stable across loads and saves."""
    backend = json.loads(tokenizer.backend_tokenizer.to_str())
    # transformers sets these per call; they describe the last call, not the tokenizer
    backend["padding"] = backend["truncation"] = None
    parts = {
        "backend": backend,
        "class": type(tokenizer).__name__,
        "padding_side": tokenizer.padding_side,
        "truncation_side": tokenizer.truncation_side,
        "model_input_names": list(tokenizer.model_input_names),
        "special_tokens": {role: str(token) for role, token in tokenizer.special_tokens_map.items()},
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, ensure_ascii=False).encode()).hexdigest()

"""T5 (Raffel et al., 2020): span corruption with sentinel tokens.

15% of a row's tokens, in spans of mean length 3, are cut out of the encoder input, each span
replaced by one sentinel (<extra_id_0>, <extra_id_1>, ...); the decoder's target lists the
sentinels each followed by the tokens it replaced, then [SEP] (our end-of-sequence). Span lengths
are drawn as in T5's random_spans_noise_mask. The model is T5ForConditionalGeneration; only its
encoder (T5EncoderModel) is exported, as that is what fine-tunes.

Sentinels are not in the shared vocabulary: they are added to this family's copy of the tokenizer
(special tokens, after every shared id, so the shared ids mean the same in all ten families) and
saved with the checkpoint.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from tokenizers import Tokenizer
from transformers import T5ForConditionalGeneration

from zhbench.pretrain.corpus import Example, join
from zhbench.pretrain.masking import IGNORE
from zhbench.pretrain.objective import Batch, Objective, Row, accuracy, pad

NUM_SENTINELS = 100  # T5's extra_ids
NOISE_DENSITY = 0.15
MEAN_NOISE_SPAN_LENGTH = 3.0


def sentinel(i: int) -> str:
    return f"<extra_id_{i}>"


def random_segmentation(num_items: int, num_segments: int, rng: np.random.Generator) -> np.ndarray:
    """Lengths of `num_segments` non-empty segments that add up to `num_items`, uniformly at random."""
    first_in_segment = np.zeros(num_items, dtype=bool)
    first_in_segment[1 + rng.permutation(num_items - 1)[:num_segments - 1]] = True
    first_in_segment[0] = True
    return np.diff(np.flatnonzero(np.append(first_in_segment, True)))


def noise_spans(length: int, rng: np.random.Generator, noise_density: float = NOISE_DENSITY,
                mean_span_length: float = MEAN_NOISE_SPAN_LENGTH) -> np.ndarray:
    """(n, 2) [start, end) of the noise spans of a `length`-token sequence, in order; the sequence
    starts with a non-noise span (T5's random_spans_noise_mask)."""
    num_noise = min(max(int(round(length * noise_density)), 1), length - 1)
    num_spans = min(max(int(round(num_noise / mean_span_length)), 1), length - num_noise)
    noise = random_segmentation(num_noise, num_spans, rng)
    kept = random_segmentation(length - num_noise, num_spans, rng)
    starts = np.cumsum(kept) + np.concatenate([[0], np.cumsum(noise)[:-1]])
    return np.stack([starts, starts + noise], axis=1)


class T5Objective(Objective):
    family = "t5"
    metrics = ("span_eval_acc",)
    model_input_names = ("input_ids", "attention_mask")
    min_example_tokens = 2  # a kept and a corrupted token

    def extend_tokenizer(self, tokenizer: Tokenizer) -> Tokenizer:
        extended = Tokenizer.from_str(tokenizer.to_str())
        extended.add_special_tokens(self.extra_special_tokens)
        return extended

    @property
    def extra_special_tokens(self) -> list[str]:
        return [sentinel(i) for i in range(NUM_SENTINELS)]

    def __init__(self, tokenizer: Tokenizer, max_len: int = 128, mlm_probability: float = NOISE_DENSITY):
        super().__init__(tokenizer, max_len, mlm_probability)
        self.sentinel_ids = np.array([self.vocab[s] for s in self.extra_special_tokens], dtype=np.int64)

    def corrupt(self, content: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """(encoder input, decoder target) of one row's content tokens, framing added."""
        spans = noise_spans(len(content), rng, self.mlm_probability)
        if len(spans) > len(self.sentinel_ids):
            raise ValueError(f"{len(spans)} noise spans but only {len(self.sentinel_ids)} sentinels: lower max_len")
        inputs, targets, at = [[self.cls_id]], [], 0
        for k, (start, end) in enumerate(spans):
            inputs += [content[at:start], [self.sentinel_ids[k]]]
            targets += [[self.sentinel_ids[k]], content[start:end]]
            at = end
        inputs += [content[at:], [self.sep_id]]
        targets.append([self.sep_id])
        return np.concatenate(inputs).astype(np.int64), np.concatenate(targets).astype(np.int64)

    def collate(self, examples: Sequence[Example], rng: np.random.Generator, pool) -> Batch:
        inputs, targets = zip(*(self.corrupt(join(e.sentences).ids, rng) for e in examples))
        rows = [Row(x, np.zeros_like(x), None, None) for x in inputs]
        batch = self.encoder_inputs(rows, inputs)
        del batch["token_type_ids"]  # T5 has no segment embedding
        batch["labels"] = pad(targets, IGNORE, self.length(targets))
        return batch

    def build_model(self, overrides=None):
        config = self.config(overrides)
        config.decoder_start_token_id = self.pad_id  # T5's convention
        # transformers 5 always ties T5's output layer to the shared embedding (std 1.0). Tied, T5
        # scales the decoder output by d_model^-0.5 before it (original T5); the mini config's
        # T5 v1.1 setting (tie_word_embeddings=False) turns that off, and the first logits would
        # have a std of sqrt(d_model). The scaling only touches the decoder, which is not exported.
        config.scale_decoder_outputs = True
        return T5ForConditionalGeneration(config)

    def accuracy_counts(self, batch, output):
        """Teacher-forced accuracy over the target's span tokens (not its sentinels or [SEP])."""
        labels = batch["labels"].clone()
        labels[torch.isin(labels, torch.from_numpy(self.sentinel_ids)) | (labels == self.sep_id)] = IGNORE
        return {"span_eval_acc": accuracy(output.logits, labels)}

    def backbone_state(self, model):
        state = {k: v for k, v in model.state_dict().items() if k.startswith(("shared.", "encoder."))}
        return model.config, state

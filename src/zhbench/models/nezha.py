"""NeZha: BERT with functional relative position encodings (Wei et al., 2019, arXiv:1909.00204).

NeZha is BERT with one change that matters: there is no absolute position embedding. Instead every
self-attention layer adds a *fixed* (non-learned) sinusoidal encoding of the relative distance j - i
between query i and key j, both to the key (in the score) and to the value (in the output):

    score_ij = q_i . (k_j + a_ij) / sqrt(d)          out_i = sum_j softmax(score)_ij (v_j + a_ij)

with a_ij = table[clip(j - i, -K, K) + K], K = max_relative_position (64 for nezha-cn-base) and
table[p, 2t] = sin(p / 10000^(2t/d)), table[p, 2t+1] = cos(p / 10000^(2t/d)), d = head size.
Distances beyond +-K share one encoding, so the model runs at any length (max_position_embeddings
is only the nominal length it was pre-trained at).

Why the table is indexed by clip(j - i) + K and not by the signed distance as the paper writes it:
the released NEZHA checkpoints (Huawei's TF code, and the transformers 4.x port that
sijunhe/nezha-cn-base was converted for) build the sinusoid over the row index 0..2K. We follow the
checkpoints, so their weights mean what they were trained to mean.

transformers 5 dropped NeZha, so this module re-implements it. Parameter names follow the 4.x port
(`embeddings.word_embeddings`, `encoder.layer.N.attention.self.query`, ...), with base_model_prefix
"nezha", so a saved `NezhaForMaskedLM` checkpoint loads its encoder weights into `NezhaModel`.
Importing this module registers "nezha" with AutoConfig/AutoModel/AutoModelForMaskedLM.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, AutoModelForMaskedLM, PretrainedConfig, PreTrainedModel
from transformers.activations import ACT2FN
from transformers.modeling_outputs import BaseModelOutputWithPooling, MaskedLMOutput
from transformers.models.bert.modeling_bert import BertOnlyMLMHead


class NezhaConfig(PretrainedConfig):
    """NeZha hyper-parameters; defaults are nezha-cn-base (BERT-base sizes, K = 64)."""

    model_type = "nezha"

    vocab_size: int = 21128
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512  # nominal pre-training length; no table depends on it
    max_relative_position: int = 64  # K: distances are clipped to [-K, K]
    type_vocab_size: int = 2
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-12
    pad_token_id: int | None = 0
    bos_token_id: int | None = None
    eos_token_id: int | None = None
    classifier_dropout: float | None = None
    use_relative_position: bool = True  # kept for checkpoint configs; NeZha always uses it
    tie_word_embeddings: bool = True

    def __post_init__(self, **kwargs):
        # Fail at config time, not deep inside the first forward pass.
        if self.hidden_size % self.num_attention_heads != 0:
            raise ValueError(
                f"NeZha hidden_size ({self.hidden_size}) is not divisible by "
                f"num_attention_heads ({self.num_attention_heads})"
            )
        super().__post_init__(**kwargs)


# --------------------------------------------------------------------------------------------------
# The functional relative position encoding


def relative_position_table(max_relative_position: int, depth: int) -> torch.Tensor:
    """The fixed (2K+1, depth) sinusoid table; row p encodes clipped distance p - K."""
    position = torch.arange(2 * max_relative_position + 1, dtype=torch.float32)[:, None]
    inv_freq = torch.exp(torch.arange(0, depth, 2, dtype=torch.float32) * (-math.log(10000.0) / depth))
    table = torch.zeros(2 * max_relative_position + 1, depth)
    table[:, 0::2] = torch.sin(position * inv_freq)
    table[:, 1::2] = torch.cos(position * inv_freq)[:, : depth // 2]
    return table


def relative_position_index(length: int, max_relative_position: int, device=None) -> torch.Tensor:
    """(length, length) row index into the table: clip(j - i, -K, K) + K for query i, key j."""
    pos = torch.arange(length, device=device)
    distance = pos[None, :] - pos[:, None]
    return distance.clamp(-max_relative_position, max_relative_position) + max_relative_position


class NezhaRelativePositions(nn.Module):
    """a_ij for every (query i, key j) pair: (length, length, head_size). No parameters, no buffers.

    The table is rebuilt per forward (it is (2K+1) x head_size, i.e. tiny) instead of living in a
    buffer: transformers 5 builds models on the meta device and would leave a non-persistent
    buffer uninitialised after from_pretrained unless _init_weights re-creates it.
    """

    def __init__(self, max_relative_position: int, depth: int):
        super().__init__()
        self.max_relative_position = max_relative_position
        self.depth = depth

    def forward(self, length: int, device=None, dtype=torch.float32) -> torch.Tensor:
        table = relative_position_table(self.max_relative_position, self.depth).to(device=device, dtype=dtype)
        return table[relative_position_index(length, self.max_relative_position, device)]


# --------------------------------------------------------------------------------------------------
# The encoder: BERT's, minus absolute positions, plus a_ij in attention


class NezhaEmbeddings(nn.Module):
    """Word + segment embeddings. No position embedding: order enters only through a_ij."""

    def __init__(self, config: NezhaConfig):
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        x = self.word_embeddings(input_ids) + self.token_type_embeddings(token_type_ids)
        return self.dropout(self.LayerNorm(x))


class NezhaSelfAttention(nn.Module):
    def __init__(self, config: NezhaConfig):
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.head_size = config.hidden_size // config.num_attention_heads
        self.query = nn.Linear(config.hidden_size, config.hidden_size)
        self.key = nn.Linear(config.hidden_size, config.hidden_size)
        self.value = nn.Linear(config.hidden_size, config.hidden_size)
        self.dropout = nn.Dropout(config.attention_probs_dropout_prob)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, rel: torch.Tensor) -> torch.Tensor:
        """x (B, L, hidden); mask (B, 1, 1, L) additive; rel (L, L, head_size) = a_ij."""
        B, L, _ = x.shape
        # (B, L, hidden) -> (B, heads, L, head_size)
        q, k, v = (proj(x).view(B, L, self.num_heads, self.head_size).transpose(1, 2)
                   for proj in (self.query, self.key, self.value))
        # content term q_i.k_j plus position term q_i.a_ij; one a_ij shared by all heads (as in NeZha)
        scores = q @ k.transpose(-1, -2) + torch.einsum("bhid,ijd->bhij", q, rel)
        scores = scores / math.sqrt(self.head_size) + mask
        probs = self.dropout(scores.softmax(dim=-1))
        # values get the same a_ij: out_i = sum_j p_ij (v_j + a_ij)
        out = probs @ v + torch.einsum("bhij,ijd->bhid", probs, rel)
        return out.transpose(1, 2).reshape(B, L, self.num_heads * self.head_size)


class NezhaSelfOutput(nn.Module):
    def __init__(self, config: NezhaConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, h: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dropout(self.dense(h)) + residual)  # post-LN, as BERT


class NezhaAttention(nn.Module):
    def __init__(self, config: NezhaConfig):
        super().__init__()
        self.self = NezhaSelfAttention(config)
        self.output = NezhaSelfOutput(config)

    def forward(self, x, mask, rel):
        return self.output(self.self(x, mask, rel), x)


class NezhaIntermediate(nn.Module):
    def __init__(self, config: NezhaConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)
        self.act = ACT2FN[config.hidden_act]

    def forward(self, h):
        return self.act(self.dense(h))


class NezhaOutput(NezhaSelfOutput):
    def __init__(self, config: NezhaConfig):
        super().__init__(config)
        self.dense = nn.Linear(config.intermediate_size, config.hidden_size)


class NezhaLayer(nn.Module):
    def __init__(self, config: NezhaConfig):
        super().__init__()
        self.attention = NezhaAttention(config)
        self.intermediate = NezhaIntermediate(config)
        self.output = NezhaOutput(config)

    def forward(self, x, mask, rel):
        h = self.attention(x, mask, rel)
        return self.output(self.intermediate(h), h)


class NezhaEncoder(nn.Module):
    def __init__(self, config: NezhaConfig):
        super().__init__()
        head_size = config.hidden_size // config.num_attention_heads
        self.relative_positions = NezhaRelativePositions(config.max_relative_position, head_size)
        self.layer = nn.ModuleList(NezhaLayer(config) for _ in range(config.num_hidden_layers))

    def forward(self, x, mask, output_hidden_states: bool = False):
        # a_ij depends only on the length, so it is built once and shared by every layer
        rel = self.relative_positions(x.shape[1], device=x.device, dtype=x.dtype)
        hidden_states = [x] if output_hidden_states else None
        for layer in self.layer:
            x = layer(x, mask, rel)
            if output_hidden_states:
                hidden_states.append(x)
        return x, hidden_states


class NezhaPooler(nn.Module):
    """tanh(W h_[CLS] + b), as BERT: the sentence vector a classifier reads."""

    def __init__(self, config: NezhaConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.activation = nn.Tanh()

    def forward(self, h):
        return self.activation(self.dense(h[:, 0]))


class NezhaPreTrainedModel(PreTrainedModel):
    config_class = NezhaConfig
    base_model_prefix = "nezha"
    # the 4.x port stored the expanded (L, L, d) encoding as a buffer; it is recomputed here
    _keys_to_ignore_on_load_unexpected = [r"relative_positions_encoding", r"positions_encoding"]
    # the default _init_weights (normal(0, initializer_range) for Linear/Embedding, ones/zeros for
    # LayerNorm, zero padding row) is exactly BERT's, so nothing to override


class NezhaModel(NezhaPreTrainedModel):
    def __init__(self, config: NezhaConfig, add_pooling_layer: bool = True):
        super().__init__(config)
        self.embeddings = NezhaEmbeddings(config)
        self.encoder = NezhaEncoder(config)
        self.pooler = NezhaPooler(config) if add_pooling_layer else None
        self.post_init()

    def get_input_embeddings(self):
        return self.embeddings.word_embeddings

    def set_input_embeddings(self, value):
        self.embeddings.word_embeddings = value

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ):
        if output_hidden_states is None:
            output_hidden_states = bool(self.config.output_hidden_states)
        x = self.embeddings(input_ids, token_type_ids)
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        # (B, L) 1/0 -> (B, 1, 1, L) additive: padding keys get the most negative finite value
        mask = (1.0 - attention_mask[:, None, None, :].to(x.dtype)) * torch.finfo(x.dtype).min
        last, hidden_states = self.encoder(x, mask, output_hidden_states)
        pooled = self.pooler(last) if self.pooler is not None else None
        out = BaseModelOutputWithPooling(
            last_hidden_state=last,
            pooler_output=pooled,
            hidden_states=tuple(hidden_states) if hidden_states is not None else None,
        )
        return out if return_dict is not False else out.to_tuple()


class NezhaForMaskedLM(NezhaPreTrainedModel):
    """NeZha with BERT's MLM head (transform + decoder tied to the word embeddings), as NeZha was
    pre-trained. The head is transformers' own BertOnlyMLMHead: NeZha's head is BERT's, and its
    parameter names (`cls.predictions.*`) are the ones the 4.x port saved."""

    _tied_weights_keys = {
        "cls.predictions.decoder.weight": "nezha.embeddings.word_embeddings.weight",
        "cls.predictions.decoder.bias": "cls.predictions.bias",
    }

    def __init__(self, config: NezhaConfig):
        super().__init__(config)
        self.nezha = NezhaModel(config, add_pooling_layer=False)
        self.cls = BertOnlyMLMHead(config)
        self.post_init()

    def get_output_embeddings(self):
        return self.cls.predictions.decoder

    def set_output_embeddings(self, new_embeddings):
        self.cls.predictions.decoder = new_embeddings
        self.cls.predictions.bias = new_embeddings.bias

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ):
        """labels: (B, L) token ids to predict, -100 where nothing is predicted."""
        encoded = self.nezha(input_ids, attention_mask, token_type_ids,
                             output_hidden_states=output_hidden_states, return_dict=True)
        logits = self.cls(encoded.last_hidden_state)
        loss = None
        if labels is not None:
            loss = nn.functional.cross_entropy(logits.view(-1, self.config.vocab_size), labels.view(-1))
        out = MaskedLMOutput(loss=loss, logits=logits, hidden_states=encoded.hidden_states)
        return out if return_dict is not False else out.to_tuple()


# Make AutoConfig/AutoModel.from_pretrained(dir) understand model_type "nezha" once zhbench is imported.
AutoConfig.register("nezha", NezhaConfig, exist_ok=True)
AutoModel.register(NezhaConfig, NezhaModel, exist_ok=True)
AutoModelForMaskedLM.register(NezhaConfig, NezhaForMaskedLM, exist_ok=True)

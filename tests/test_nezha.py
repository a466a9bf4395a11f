"""NeZha's functional relative position encoding and its save/load through AutoModel."""
from __future__ import annotations

import math

import pytest
import torch
from safetensors.torch import save_file
from transformers import AutoConfig, AutoModel, BertConfig, BertModel

from zhbench.models.nezha import (
    NezhaConfig,
    NezhaModel,
    NezhaRelativePositions,
    NezhaSelfAttention,
    relative_position_index,
    relative_position_table,
)

torch.set_num_threads(1)

K = 3  # max_relative_position in these tests
D = 8  # head size


def sinusoid(p: int, depth: int = D) -> torch.Tensor:
    """The encoding of table row p, straight from the formula: sin/cos(p / 10000^(2t/d))."""
    out = torch.empty(depth)
    for t in range(depth // 2):
        angle = p / 10000 ** (2 * t / depth)
        out[2 * t], out[2 * t + 1] = math.sin(angle), math.cos(angle)
    return out


def tiny_config(**kw) -> NezhaConfig:
    base = dict(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                intermediate_size=32, max_relative_position=K, hidden_dropout_prob=0.0,
                attention_probs_dropout_prob=0.0)
    return NezhaConfig(**{**base, **kw})


def test_table_is_the_fixed_sinusoid():
    table = relative_position_table(K, D)
    assert table.shape == (2 * K + 1, D)
    for p in range(2 * K + 1):
        torch.testing.assert_close(table[p], sinusoid(p))


def test_encoding_of_distance_j_minus_i_is_clipped():
    rel = NezhaRelativePositions(K, D)(10)  # (query i, key j, D)
    table = relative_position_table(K, D)
    assert rel.shape == (10, 10, D)
    for i, j in [(0, 0), (4, 4), (2, 3), (3, 2), (0, 2), (5, 2), (6, 9)]:
        torch.testing.assert_close(rel[i, j], table[j - i + K])  # within +-K: the exact distance
    torch.testing.assert_close(rel[0, 9], table[2 * K])  # j - i = 9 clips to +K
    torch.testing.assert_close(rel[9, 0], table[0])  # j - i = -9 clips to -K
    torch.testing.assert_close(rel[0, K], rel[0, 9])  # beyond K, all distances look alike
    torch.testing.assert_close(rel[9, 9 - K], rel[9, 0])
    assert relative_position_index(4, K).tolist()[0] == [K, K + 1, K + 2, K + 3]


def test_encoding_is_not_learned():
    model = NezhaModel(tiny_config())
    rel = model.encoder.relative_positions
    assert list(rel.parameters()) == [] and list(rel.buffers()) == []
    assert not any("position" in name for name, _ in model.named_parameters())  # no absolute positions
    assert "max_relative_position" in model.config.to_dict()


def test_attention_matches_the_paper_formula():
    torch.manual_seed(0)
    config = tiny_config(hidden_size=D * 2, num_attention_heads=2)
    attn = NezhaSelfAttention(config).eval()
    L = 5
    x = torch.randn(1, L, D * 2)
    mask = torch.zeros(1, 1, 1, L)
    rel = NezhaRelativePositions(K, D)(L)
    out = attn(x, mask, rel)

    # per head: e_ij = q_i.(k_j + a_ij)/sqrt(d); z_i = sum_j softmax_j(e_ij) (v_j + a_ij)
    q, k, v = attn.query(x)[0], attn.key(x)[0], attn.value(x)[0]
    for h in range(2):
        s = slice(h * D, (h + 1) * D)
        for i in range(L):
            e = torch.stack([q[i, s] @ (k[j, s] + rel[i, j]) / math.sqrt(D) for j in range(L)])
            p = e.softmax(0)
            z = sum(p[j] * (v[j, s] + rel[i, j]) for j in range(L))
            torch.testing.assert_close(out[0, i, s], z)


def test_output_depends_on_relative_not_absolute_position():
    """The same tokens shifted right behind left padding: NeZha's states at those tokens are the
    same; BERT's (absolute positions) are not."""
    ids = torch.tensor([[5, 9, 12, 7, 3]])
    shift = 4
    shifted = torch.cat([torch.zeros(1, shift, dtype=torch.long), ids], dim=1)
    mask = torch.ones_like(ids)
    shifted_mask = torch.cat([torch.zeros(1, shift, dtype=torch.long), mask], dim=1)

    torch.manual_seed(0)
    nezha = NezhaModel(tiny_config()).eval()
    with torch.no_grad():
        a = nezha(ids, attention_mask=mask).last_hidden_state
        b = nezha(shifted, attention_mask=shifted_mask).last_hidden_state[:, shift:]
    torch.testing.assert_close(a, b)

    bert = BertModel(BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                                intermediate_size=32, max_position_embeddings=32)).eval()
    with torch.no_grad():
        a = bert(ids, attention_mask=mask).last_hidden_state
        b = bert(shifted, attention_mask=shifted_mask).last_hidden_state[:, shift:]
    assert not torch.allclose(a, b, atol=1e-4)


def test_hidden_not_divisible_by_heads():
    with pytest.raises(ValueError, match=r"hidden_size \(30\).*num_attention_heads \(4\)"):
        NezhaConfig(hidden_size=30, num_attention_heads=4)


def test_automodel_loads_a_saved_nezha(tmp_path):
    torch.manual_seed(0)
    model = NezhaModel(tiny_config()).eval()
    model.save_pretrained(tmp_path)
    assert AutoConfig.from_pretrained(tmp_path).model_type == "nezha"
    loaded = AutoModel.from_pretrained(tmp_path)
    assert isinstance(loaded, NezhaModel)
    ids = torch.tensor([[1, 2, 3, 4], [5, 6, 0, 0]])
    mask = (ids != 0).long()
    with torch.no_grad():
        expected = model(ids, attention_mask=mask)
        got = loaded(ids, attention_mask=mask)
    assert torch.equal(expected.last_hidden_state, got.last_hidden_state)
    assert torch.equal(expected.pooler_output, got.pooler_output)


def test_loads_a_masked_lm_checkpoint_layout(tmp_path):
    """A checkpoint saved from NeZhaForMaskedLM (as sijunhe/nezha-cn-base is): keys under "nezha.",
    an MLM head, the old expanded position buffer and the ALBERT-style extras in config.json."""
    torch.manual_seed(0)
    source = NezhaModel(tiny_config())
    state = {f"nezha.{k}": v.contiguous() for k, v in source.state_dict().items()}
    state["cls.predictions.bias"] = torch.zeros(50)
    state["nezha.encoder.layer.0.attention.self.relative_positions_encoding.positions_encoding"] = torch.zeros(4, 4, 8)
    save_file(state, str(tmp_path / "model.safetensors"), metadata={"format": "pt"})
    config = tiny_config(embedding_size=128, inner_group_num=1, num_hidden_groups=1)
    config.architectures = ["NeZhaForMaskedLM"]
    config.save_pretrained(tmp_path)

    loaded, info = NezhaModel.from_pretrained(tmp_path, output_loading_info=True)
    assert info["missing_keys"] == set() or not info["missing_keys"]
    for k, v in source.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v), k

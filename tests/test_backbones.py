"""The ten backbones: mini builds train, base configs match the write-ups, pretrained loading fails clearly,
and a saved classifier comes back bit-identical."""
from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoModel, BertModel

from zhbench.io import BadInputError
from zhbench.models.backbones import (
    BACKBONES,
    PRETRAINED_CHECKPOINTS,
    PretrainedUnavailableError,
    SequenceClassifier,
    build_backbone,
    build_config,
    count_parameters,
    load_classifier,
    save_classifier,
)
from zhbench.models.nezha import NezhaModel

torch.set_num_threads(1)  # the machine is shared; these models are tiny anyway

VOCAB = 300
NUM_LABELS = 5


def batch():
    """(2, 16) with the second row padded after 9 tokens (pad id 0), as the data loader makes it."""
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(1, VOCAB, (2, 16), generator=g)
    mask = torch.ones_like(ids)
    ids[1, 9:] = 0
    mask[1, 9:] = 0
    return ids, mask, torch.zeros_like(ids)


def mini_classifier(name: str, seed: int = 0) -> SequenceClassifier:
    torch.manual_seed(seed)
    return SequenceClassifier(build_backbone(name, "mini", vocab_size=VOCAB, max_positions=64), name, NUM_LABELS)


def test_the_ten_backbones():
    assert len(BACKBONES) == 10 and set(PRETRAINED_CHECKPOINTS) == set(BACKBONES)


@pytest.mark.parametrize("name", BACKBONES)
def test_mini_trains_and_masks_padding(name):
    model = mini_classifier(name)
    ids, mask, types = batch()
    logits = model(ids, mask, types).logits
    assert logits.shape == (2, NUM_LABELS)
    loss = torch.nn.functional.cross_entropy(logits, torch.tensor([0, 3]))
    loss.backward()
    assert model.head.out.weight.grad is not None
    emb = model.backbone.get_input_embeddings().weight
    assert emb.grad is not None and emb.grad.abs().sum() > 0  # the gradient reaches the bottom

    model.eval()
    with torch.no_grad():
        ref = model(ids, mask, types).logits
        # what sits under the padding must not matter: the mask hides it from every family's pooling
        noisy = ids.clone()
        noisy[1, 9:] = 7
        torch.testing.assert_close(model(noisy, mask, types).logits, ref)
        layers = model.hidden_states_per_layer(ids, mask, types)
    assert len(layers) == model.backbone.config.num_hidden_layers
    assert all(h.shape == (*ids.shape, model.backbone.config.hidden_size) for h in layers)


SEED_BASE = {
    # name: (vocab, extra expected config values)
    "bert": (21128, {}),
    "roberta": (21128, {}),
    "macbert": (21128, {}),
    "mengzi": (21128, {}),
    "albert": (21128, {"embedding_size": 128, "num_hidden_groups": 1, "hidden_act": "relu"}),
    "electra": (21128, {"embedding_size": 768}),
    "ernie": (40000, {"use_task_id": True, "task_type_vocab_size": 3, "type_vocab_size": 4,
                      "max_position_embeddings": 2048}),
    "nezha": (21128, {"max_relative_position": 64}),
    "xlnet": (32000, {"attn_type": "bi", "d_head": 64, "d_inner": 3072, "ff_activation": "relu"}),
    "t5": (50000, {"d_ff": 2048, "d_kv": 64, "feed_forward_proj": "gated-gelu",
                   "relative_attention_num_buckets": 32, "is_gated_act": True,
                   # transformers 5 forces tie_word_embeddings=True on T5Config and keeps the
                   # checkpoint's "untied" (T5 v1.1 / mT5) as scale_decoder_outputs=False
                   "scale_decoder_outputs": False}),
}


@pytest.mark.parametrize("name", BACKBONES)
def test_base_config_is_the_seeds(name):
    vocab, extra = SEED_BASE[name]
    config = build_config(name, "base", None, 128)
    # hidden_size / num_attention_heads / num_hidden_layers map to d_model / num_heads / n_layer in t5, xlnet
    assert (config.hidden_size, config.num_hidden_layers, config.num_attention_heads) == (768, 12, 12)
    assert config.vocab_size == vocab
    if name not in ("t5", "xlnet"):
        assert config.intermediate_size == 3072
        assert config.max_position_embeddings == extra.get("max_position_embeddings", 512)
    for key, value in extra.items():
        assert getattr(config, key) == value, key


BASE_PARAMETERS = {  # backbone only, i.e. what the seed's checkpoints hold (without MLM heads)
    "bert": 102_267_648,  # bert-base-chinese
    "roberta": 102_267_648,
    "macbert": 102_267_648,
    "mengzi": 102_267_648,
    "albert": 10_547_968,  # 128-d embeddings and one shared layer
    "electra": 101_677_056,  # no pooler
    "ernie": 117_944_832,  # 40k vocab, 2048 positions, task-type embedding
    "nezha": 101_874_432,  # BERT minus the 512 x 768 absolute position table
    "xlnet": 116_718_336,
    "t5": 123_354_240,  # encoder only: 50k x 768 embedding + 12 gated-GELU blocks
}


@pytest.mark.parametrize("name", BACKBONES)
def test_base_parameter_counts(name):
    # on the meta device: the real module tree with every parameter's shape, without allocating
    # or initialising ~100M floats per model
    with torch.device("meta"):
        model = build_backbone(name, "base", max_positions=512)
    assert count_parameters(model) == BASE_PARAMETERS[name]
    if name == "bert":
        assert isinstance(model, BertModel) and abs(count_parameters(model) - 102e6) < 0.5e6


def test_mini_shape_and_overrides():
    config = build_config("xlnet", "mini", 1000, 64, {"hidden_size": 96, "num_attention_heads": 3})
    assert (config.d_model, config.n_head, config.d_head, config.d_inner) == (96, 3, 32, 384)
    t5 = build_config("t5", "mini", 1000, 64, {"hidden_dropout_prob": 0.2})
    assert t5.dropout_rate == 0.2 and t5.d_kv * t5.num_heads == t5.d_model
    assert build_config("nezha", "mini", 1000, 64, {"max_relative_position": 16}).max_relative_position == 16
    # mini configs carry the project's vocab and positions
    bert = build_config("bert", "mini", 1234, 96)
    assert (bert.vocab_size, bert.max_position_embeddings) == (1234, 96)
    assert build_config("ernie", "mini", 1000, 32).use_task_id is True


def test_albert_shares_its_layer():
    one = count_parameters(build_backbone("albert", vocab_size=VOCAB, overrides={"num_hidden_layers": 1}))
    four = count_parameters(build_backbone("albert", vocab_size=VOCAB, overrides={"num_hidden_layers": 4}))
    assert one == four


def test_unknown_backbone_lists_the_known_ones():
    with pytest.raises(ValueError, match="known backbones: bert, albert, t5"):
        build_config("gpt2", "mini", VOCAB, 64)
    with pytest.raises(ValueError, match="unknown backbone"):
        build_backbone("bret", vocab_size=VOCAB)


@pytest.mark.parametrize("name", ["bert", "t5", "xlnet", "nezha"])
def test_hidden_not_divisible_by_heads(name):
    with pytest.raises(ValueError, match=r"hidden_size 130 is not divisible by num_attention_heads 4"):
        build_config(name, "mini", VOCAB, 64, {"hidden_size": 130, "num_attention_heads": 4})


def test_other_config_errors_are_early_and_clear():
    with pytest.raises(ValueError, match="needs vocab_size"):
        build_config("bert", "mini", None, 64)
    with pytest.raises(ValueError, match="unknown size"):
        build_config("bert", "large", VOCAB, 64)
    with pytest.raises(ValueError, match=r"unknown config override\(s\) \['hiden_size'\]"):
        build_config("bert", "mini", VOCAB, 64, {"hiden_size": 64})
    with pytest.raises(ValueError, match="exceeds its position table"):
        build_config("bert", "base", None, 1024)


@pytest.mark.parametrize("name", ["bert", "nezha"])
def test_pretrained_local_dir_loads_identically(name, tmp_path):
    torch.manual_seed(0)
    original = build_backbone(name, vocab_size=VOCAB, max_positions=64).eval()
    original.save_pretrained(tmp_path / "ckpt")
    loaded = build_backbone(name, max_positions=64, pretrained=str(tmp_path / "ckpt"))
    ids, mask, _ = batch()
    with torch.no_grad():
        a = original(input_ids=ids, attention_mask=mask).last_hidden_state
        b = loaded(input_ids=ids, attention_mask=mask).last_hidden_state
    assert torch.equal(a, b)


def test_missing_local_dir_says_how_to_get_a_copy(tmp_path):
    with pytest.raises(PretrainedUnavailableError) as e:
        build_backbone("macbert", "base", pretrained=str(tmp_path / "nowhere"))
    msg = str(e.value)
    assert "does not exist" in msg
    assert "hf download hfl/chinese-macbert-base --local-dir DIR" in msg
    assert "huggingface-cli download" in msg
    assert "backbones.macbert.pretrained: DIR" in msg


def test_local_dir_without_weights(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(PretrainedUnavailableError, match="no weights file"):
        build_backbone("bert", pretrained=str(tmp_path))


def test_hub_id_offline_fails_fast_with_guidance(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # never touch the network from tests
    with pytest.raises(PretrainedUnavailableError, match="hf download zhbench-test/not-a-model"):
        build_backbone("bert", "base", pretrained="zhbench-test/not-a-model")


@pytest.mark.parametrize("name", BACKBONES)
def test_save_load_classifier_roundtrip(name, tmp_path):
    model = mini_classifier(name, seed=1).eval()
    extra = {"labels": ["财经", "体育", "娱乐", "教育", "科技"], "granularity": "char", "max_len": 32}
    save_classifier(model, tmp_path / "clf", extra)
    files = sorted(p.name for p in (tmp_path / "clf").iterdir())
    assert {"config.json", "model.safetensors", "head.safetensors", "zhbench.json"} <= set(files)
    assert not any(f.endswith((".bin", ".pt", ".pkl")) for f in files)  # safetensors only

    loaded, extra_back = load_classifier(tmp_path / "clf")
    assert extra_back == extra and loaded.family == name and not loaded.training
    ids, mask, types = batch()
    with torch.no_grad():
        assert torch.equal(loaded(ids, mask, types).logits, model(ids, mask, types).logits)

    if name in ("bert", "roberta", "macbert", "mengzi", "nezha"):
        backbone = AutoModel.from_pretrained(tmp_path / "clf")  # the backbone is a plain HF checkpoint
        assert isinstance(backbone, NezhaModel if name == "nezha" else BertModel)


def test_load_classifier_missing_file(tmp_path):
    with pytest.raises(BadInputError, match="zhbench.json"):
        load_classifier(tmp_path)

"""Pre-training objectives: every family trains, evaluates, exports a loadable backbone, never
corrupts a special token, and is reproducible under a seed."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from transformers import DataCollatorForPermutationLanguageModeling, PreTrainedTokenizerFast

from zhbench.io import BadInputError, read_json
from zhbench.models.backbones import BACKBONES, FAMILIES
from zhbench.pretrain import OBJECTIVES, objective_for
from zhbench.pretrain.corpus import Sentence, char_tokenizer, pos_tags, read_documents, tagged_tokens
from zhbench.pretrain.driver import pretrain
from zhbench.pretrain.ernie import knowledge_units
from zhbench.pretrain.masking import IGNORE, Corruption, choose, units_of
from zhbench.pretrain.objective import EXPORT_INFO_FILE
from zhbench.pretrain.similar import similar_tokens
from zhbench.pretrain.t5 import noise_spans
from zhbench.pretrain.xlnet import permutation_targets
from zhbench.text.segment import char_tokens
from zhbench.text.vocab import CLS, MASK, PAD, SEP

torch.set_num_threads(1)

SENTENCES = [
    "北京大学今天发布了新的招生计划。", "苹果公司在上海开设第二家零售店。", "股市周一大幅上涨，沪指收涨2.5%。",
    "中国队在世界杯预选赛中以3比1战胜对手。", "新款iPhone6s售价5288元起。", "海淀区两套住房的价格超过了八百万元。",
    "国家统计局公布了上个月的消费数据。", "姚明出席了篮球协会的新闻发布会。", "这部电影讲述了一个温暖的故事。",
    "专家提醒市民注意防范流感。", "东5环海棠公社230-290平2居准现房98折优惠", "两天价网站背后重重迷雾：做个网站究竟要多少钱",
    "南方多地迎来强降雨天气。", "教育部要求各地减轻学生负担。", "央行宣布下调存款准备金率。", "球迷在广场上庆祝胜利。",
]
MAX_LEN = 32
STEPS = 3
BATCH = 4


def documents(n: int, offset: int) -> list[list[str]]:
    return [[SENTENCES[(offset + 3 * k + j) % len(SENTENCES)] for j in range(4)] for k in range(n)]


def write_corpus(path, train, heldout):
    path.mkdir(parents=True, exist_ok=True)
    for name, docs in (("train", train), ("heldout", heldout)):
        (path / f"{name}.txt").write_text("\n\n".join("\n".join(d) for d in docs) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("corpus"), documents(10, 0), documents(4, 5))


@pytest.fixture(scope="module")
def tokenizer():
    return char_tokenizer(SENTENCES)


@pytest.fixture(scope="module")
def runs(corpus, tokenizer):
    """Each family trained twice with the same seed (computed once per family, on first use)."""
    cache = {}

    def get(family):
        if family not in cache:
            cache[family] = [pretrain(family, corpus, tokenizer, steps=STEPS, batch_size=BATCH, max_len=MAX_LEN,
                                      seed=7, eval_batches=2) for _ in range(2)]
        return cache[family]

    return get


def test_every_family_has_an_objective():
    assert set(OBJECTIVES) == set(BACKBONES)
    with pytest.raises(ValueError, match="no pre-training objective for 'gpt'"):
        objective_for("gpt", char_tokenizer(SENTENCES))


# --------------------------------------------------------------------------------------------------
# Every family: trains, evaluates, reproduces, exports


@pytest.mark.parametrize("family", BACKBONES)
def test_steps_run_finite_and_reproducible(runs, family):
    first, second = runs(family)
    assert len(first.losses) == STEPS and all(math.isfinite(x) for x in first.losses)
    assert first.losses == second.losses  # same seed, same machine: bit-identical
    assert first.metrics == second.metrics
    assert set(first.metrics) == {"loss_eval", *first.objective.metrics}
    assert math.isfinite(first.metrics["loss_eval"])
    assert all(0.0 <= first.metrics[m] <= 1.0 for m in first.objective.metrics)


EXPECTED_METRICS = {
    "bert": {"mlm_eval_acc", "nsp_eval_acc"}, "roberta": {"mlm_eval_acc"}, "macbert": {"mlm_eval_acc", "sop_eval_acc"},
    "mengzi": {"mlm_eval_acc", "pos_eval_acc"}, "ernie": {"mlm_eval_acc", "nsp_eval_acc"},
    "albert": {"mlm_eval_acc", "sop_eval_acc"}, "electra": {"mlm_eval_acc", "rtd_eval_acc", "rtd_replaced_eval_acc"},
    "xlnet": {"plm_eval_acc"}, "t5": {"span_eval_acc"}, "nezha": {"mlm_eval_acc"},
}


@pytest.mark.parametrize("family", BACKBONES)
def test_eval_metrics_are_the_familys(runs, family):
    assert set(runs(family)[0].metrics) == EXPECTED_METRICS[family] | {"loss_eval"}


@pytest.mark.parametrize("family", BACKBONES)
def test_export_loads_every_encoder_weight(runs, family, tmp_path):
    run = runs(family)[0]
    untrained = run.objective.export(run.model, tmp_path / family, info={"steps": STEPS})
    loaded, info = FAMILIES[family].model_class.from_pretrained(tmp_path / family, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    _, trained = run.objective.backbone_state(run.model)
    state = loaded.state_dict()
    assert set(trained) - set(untrained) <= set(state)
    for key, value in trained.items():
        assert torch.equal(state[key], value), key
    # only the pooler of the MLM-only BERT-style models is left untrained
    assert all(k.startswith("pooler.") for k in untrained)
    assert bool(untrained) == (family in ("roberta", "mengzi", "nezha"))
    assert read_json(tmp_path / family / EXPORT_INFO_FILE) == {"family": family, "untrained": untrained, "steps": STEPS}

    tok = PreTrainedTokenizerFast.from_pretrained(tmp_path / family)
    assert (tok.pad_token, tok.cls_token, tok.sep_token, tok.mask_token) == (PAD, CLS, SEP, MASK)
    assert len(tok) == loaded.config.vocab_size == run.objective.vocab_size
    if family == "t5":
        assert "<extra_id_0>" in tok.all_special_tokens and "<extra_id_99>" in tok.all_special_tokens
    shared = run.objective.tokenizer.get_vocab()
    assert all(tok.convert_tokens_to_ids(t) == i for t, i in shared.items())


# --------------------------------------------------------------------------------------------------
# Masking never touches special tokens


def collated(family, corpus, tokenizer, batches=40):
    objective = objective_for(family, tokenizer, MAX_LEN)
    examples = objective.examples(read_documents(corpus / "train.txt"))
    collate = objective.collator(seed=3, pool=examples)
    rng = np.random.default_rng(0)
    return objective, [(idx, collate([examples[i] for i in idx]))
                       for idx in (rng.choice(len(examples), BATCH, replace=False) for _ in range(batches))], examples


@pytest.mark.parametrize("family", [f for f in BACKBONES if f not in ("xlnet", "t5")])
def test_mlm_masking_never_touches_special_tokens(family, corpus, tokenizer):
    objective, batches, _ = collated(family, corpus, tokenizer)
    special = torch.from_numpy(objective.special_ids)
    masked_any = False
    for _, batch in batches:
        x, y, attn = batch["input_ids"], batch["labels"], batch["attention_mask"]
        chosen = y != IGNORE
        masked_any |= bool(chosen.any())
        assert not torch.isin(y[chosen], special).any()  # no special token is ever a target
        # what stands at a chosen position is [MASK] or a regular token, never [CLS]/[SEP]/[PAD]/[UNK]
        assert not torch.isin(x[chosen], special[special != objective.mask_id]).any()
        # the frame is intact: [CLS] first, [SEP]s where they were, [PAD] exactly at padding
        assert (x[:, 0] == objective.cls_id).all() and ((x == objective.cls_id).sum(1) == 1).all()
        assert ((x == objective.sep_id).sum(1) == (2 if objective.pair else 1)).all()
        assert torch.equal(x == objective.pad_id, attn == 0)
    assert masked_any


def test_xlnet_never_predicts_or_hides_special_tokens(corpus, tokenizer):
    objective, batches, _ = collated("xlnet", corpus, tokenizer)
    special = torch.from_numpy(objective.special_ids)
    for _, batch in batches:
        x, y = batch["input_ids"], batch["labels"]
        predicted = y != IGNORE
        assert predicted.any() and not torch.isin(y[predicted], special).any()
        assert (x[predicted] == objective.mask_id).all()
        assert (x[:, 0] == objective.cls_id).all()
        assert torch.equal(x == objective.pad_id, batch["attention_mask"] == 0)
        # nothing attends to a predicted token's content from before it in the order: it cannot see itself
        for i in range(x.shape[0]):
            rows = predicted[i].nonzero().squeeze(-1)
            assert (batch["perm_mask"][i, rows, rows] == 1).all()


def test_t5_spans_never_cover_special_tokens_and_rebuild_the_row(corpus, tokenizer):
    objective, batches, examples = collated("t5", corpus, tokenizer)
    sentinels = set(objective.sentinel_ids.tolist())
    for idx, batch in batches:
        for row, i in enumerate(idx):
            x = batch["input_ids"][row][batch["attention_mask"][row].bool()].tolist()
            y = [t for t in batch["labels"][row].tolist() if t != IGNORE]
            assert x[0] == objective.cls_id and x[-1] == objective.sep_id and y[-1] == objective.sep_id
            assert objective.cls_id not in x[1:-1] + y and objective.pad_id not in x + y
            assert objective.sep_id not in x[1:-1] + y[:-1]
            # put every span back in place of its sentinel: the original row comes back
            spans, current = {}, None
            for t in y[:-1]:
                if t in sentinels:
                    current = spans.setdefault(t, [])
                else:
                    current.append(t)
            rebuilt = [t for s in x[1:-1] for t in (spans[s] if s in sentinels else [s])]
            assert rebuilt == np.concatenate([s.ids for s in examples[i].sentences]).tolist()


# --------------------------------------------------------------------------------------------------
# Family traits


def test_bert_masks_are_static_roberta_masks_are_dynamic(corpus, tokenizer):
    for family, static in (("bert", True), ("roberta", False)):
        objective = objective_for(family, tokenizer, MAX_LEN)
        examples = objective.examples(read_documents(corpus / "train.txt"))
        collate = objective.collator(seed=0, pool=examples)
        first = collate(examples[:2])
        again = collate(examples[:2])  # later in the same generator's stream: a new epoch
        other = objective.collator(seed=1, pool=examples)(examples[:2])
        same = torch.equal(first["labels"], again["labels"]) and torch.equal(first["labels"], other["labels"])
        assert same == static, family


def test_xlnet_collator_matches_transformers(tokenizer):
    objective = objective_for("xlnet", tokenizer, MAX_LEN)
    fast = objective.fast_tokenizer()
    rows = [objective.frame(Sentence(np.array(tokenizer.encode(char_tokens(s), is_pretokenized=True,
                                                               add_special_tokens=False).ids))).ids
            for s in SENTENCES[:6]]
    length = objective.length(rows)
    padded = [torch.tensor(np.pad(r, (0, length - len(r)))) for r in rows]

    torch.manual_seed(11)
    theirs = DataCollatorForPermutationLanguageModeling(tokenizer=fast)([p.clone() for p in padded])
    ids = torch.stack(padded)
    functional = torch.from_numpy(~objective.regular(ids.numpy()))
    ours = permutation_targets(ids, functional, objective.mask_id, torch.Generator().manual_seed(11))
    for name, tensor in zip(("input_ids", "perm_mask", "target_mapping", "labels"), ours):
        assert torch.equal(tensor, theirs[name]), name


def test_electra_generator_is_a_quarter_wide_and_shares_embeddings(tokenizer):
    model = objective_for("electra", tokenizer, MAX_LEN).build_model()
    gen, disc = model.generator, model.discriminator
    assert gen.config.hidden_size * 4 == disc.config.hidden_size
    assert gen.electra.embeddings is disc.electra.embeddings
    assert gen.generator_lm_head.weight is disc.electra.embeddings.word_embeddings.weight
    # the one-unit output layer starts at a Linear's scale, not 0.02 (electra.py says why)
    out = disc.discriminator_predictions.dense_prediction.weight
    assert 0.5 < out.std().item() * disc.config.hidden_size ** 0.5 < 2.0


def test_mengzi_tags_every_real_token(corpus, tokenizer):
    objective, batches, _ = collated("mengzi", corpus, tokenizer, batches=3)
    for _, batch in batches:
        tags, x = batch["pos_labels"], batch["input_ids"]
        real = ~torch.isin(x, torch.tensor([objective.cls_id, objective.sep_id, objective.pad_id]))
        assert (tags[~real] == IGNORE).all()
        assert ((tags[real] >= 0) & (tags[real] < len(pos_tags()))).all()


def test_macbert_replaces_with_similar_characters_not_mask(corpus, tokenizer):
    objective, batches, _ = collated("macbert", corpus, tokenizer)
    chosen = torch.cat([b["labels"][b["labels"] != IGNORE] for _, b in batches])
    put = torch.cat([b["input_ids"][b["labels"] != IGNORE] for _, b in batches])
    assert not (put == objective.mask_id).any()
    table = objective.corruption.similar
    similar = np.array([p in table[c] for c, p in zip(chosen.tolist(), put.tolist())])
    assert 0.6 < similar.mean() < 0.9  # 80% similar, 10% random (sometimes a similar one too), 10% kept


def test_similar_characters_come_from_lac(tokenizer):
    vocab = tokenizer.get_vocab()
    regular = np.array([i for t, i in vocab.items() if not t.startswith("[")])
    table = similar_tokens(vocab, regular, k=5)
    inverse = {i: t for t, i in vocab.items()}
    assert "南" in [inverse[i] for i in table[vocab["北"]] if i >= 0]
    assert (table[vocab[PAD]] == -1).all()  # special tokens neither replace nor are replaced
    assert not np.isin(table, [vocab[t] for t in (PAD, CLS, SEP, MASK)]).any()


def test_ernie_masks_entities_and_phrases_whole():
    words = [np.array([0, 1]), np.array([2, 3]), np.array([4]), np.array([5, 6]), np.array([7, 8])]
    tags = ["ns", "n", "p", "n", "vn"]  # a place, a lone noun, a preposition, a noun phrase of two words
    units = [u.tolist() for u in knowledge_units(words, tags)]
    assert units == [[0, 1], [2], [3], [4], [5, 6, 7, 8]]


# --------------------------------------------------------------------------------------------------
# Masking, corpus and span details


def test_choose_respects_the_budget_and_whole_units():
    rng = np.random.default_rng(0)
    groups = np.array([-1, 0, 0, 1, 2, 2, 2, 3, 4, 4, -1] * 3)
    units = units_of(groups)
    assert [u.tolist() for u in units[:5]] == [[1, 2], [3], [4, 5, 6], [7], [8, 9]]
    for weights in ((1.0,), (0.4, 0.3, 0.2, 0.1)):
        for _ in range(200):
            spans = choose(units, rng, 0.3, weights)
            covered = np.concatenate(spans)
            assert len(covered) == len(set(covered.tolist())) <= round(0.3 * 27)
            starts = {int(u[0]): u for u in units}
            for span in spans:  # every span is made of whole units
                at = 0
                while at < len(span):
                    unit = starts[int(span[at])]
                    assert span[at:at + len(unit)].tolist() == unit.tolist()
                    at += len(unit)


def test_random_replacement_never_draws_a_special_token():
    regular = np.arange(5, 20)
    corruption = Corruption(mask_id=4, regular_ids=regular, mask_prob=0.0, random_prob=1.0)
    ids = np.arange(5, 25) % 20
    inputs, labels = corruption.apply(ids, [np.arange(len(ids))], np.random.default_rng(0))
    assert np.isin(inputs, regular).all() and (labels == ids).all()


def test_t5_noise_spans_follow_random_spans_noise_mask():
    rng = np.random.default_rng(0)
    for length in (2, 5, 30, 126):
        for _ in range(50):
            spans = noise_spans(length, rng)
            noise = int((spans[:, 1] - spans[:, 0]).sum())
            assert noise == min(max(round(length * 0.15), 1), length - 1)
            assert spans[0, 0] > 0 and (spans[1:, 0] > spans[:-1, 1]).all() and spans[-1, 1] <= length


def test_tagged_tokens_align_jieba_words_with_char_tokens():
    tokens, words, tags = tagged_tokens("东5环海棠公社230-290平")
    assert tokens == ["东", "5", "环", "海", "棠", "公", "社", "230-290", "平"]
    assert words[3] == words[4] != words[5] == words[6]  # 海棠 / 公社
    assert tags[3] == "n" and all(t in pos_tags() for t in tags)


def test_read_documents_splits_on_blank_lines(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text("一。\n二。\n\n\n三。\n  \n四。\n", encoding="utf-8")
    assert read_documents(path) == [["一。", "二。"], ["三。"], ["四。"]]
    path.write_bytes(b"\xff\xfe\n")
    with pytest.raises(BadInputError, match="c.txt:1: expected UTF-8"):
        read_documents(path)
    write_corpus(tmp_path, documents(3, 0), [])
    (tmp_path / "heldout.txt").unlink()
    with pytest.raises(BadInputError, match="heldout split"):
        pretrain("bert", tmp_path, char_tokenizer(SENTENCES), steps=1)


def test_nsp_needs_two_documents(tokenizer):
    objective = objective_for("bert", tokenizer, MAX_LEN)
    one_doc = objective.examples([SENTENCES[:4]])
    with pytest.raises(ValueError, match="at least two documents"):
        objective.collator(0, pool=one_doc)


def test_dataset_is_what_a_fit_loop_reads(corpus, tokenizer):
    objective = objective_for("roberta", tokenizer, MAX_LEN)
    examples = objective.examples(read_documents(corpus / "train.txt"))
    data = objective.dataset(examples, seed=0)
    assert len(data) == len(examples) and data.lengths == [len(e) for e in examples]
    batch = data.batch([2, 0, 1])
    assert batch["input_ids"].shape[0] == 3 and set(batch) == {"input_ids", "token_type_ids", "attention_mask", "labels"}
    assert torch.equal(batch["input_ids"], objective.dataset(examples, seed=0).batch([2, 0, 1])["input_ids"])

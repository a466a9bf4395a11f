"""Self-supervised pre-training, one objective per backbone family (see objective.py for what an
objective provides, and each family's module for its objective).

One family's pre-training stage, in a fit loop whose model returns `.loss` from forward(**batch):

    objective = objective_for(family, tokenizer, max_len)           # tokenizer: the shared char vocab
    train = objective.examples(read_documents(split_path(corpus_dir, "train")))
    heldout = objective.examples(read_documents(split_path(corpus_dir, "heldout")))
    torch.manual_seed(seed)
    model = objective.build_model()
    collate = objective.collator(seed, pool=train)                 # examples -> batch (its own generator)
    eval_batches = heldout_batches(objective, heldout, batch_size, n, seed + 1)   # fixed masks
    ... each step: loss = model(**collate([train[i] for i in idx])).loss
    ... each evaluation: objective.evaluate(model, eval_batches) -> {"loss_eval", "mlm_eval_acc", ...}
    objective.export(model, out_dir, info={...})                     # hub-layout backbone + tokenizer

Fine-tuning then loads out_dir with build_backbone(family, pretrained=out_dir), over the same
tokenizer (the ids must match the pre-trained embeddings).
"""
from __future__ import annotations

from typing import Any

from tokenizers import Tokenizer

from zhbench.models.backbones import BACKBONES
from zhbench.pretrain.albert import AlbertObjective
from zhbench.pretrain.bert import BertObjective
from zhbench.pretrain.electra import ElectraObjective
from zhbench.pretrain.ernie import ErnieObjective
from zhbench.pretrain.macbert import MacbertObjective
from zhbench.pretrain.mengzi import MengziObjective
from zhbench.pretrain.nezha import NezhaObjective
from zhbench.pretrain.objective import Objective
from zhbench.pretrain.roberta import RobertaObjective
from zhbench.pretrain.t5 import T5Objective
from zhbench.pretrain.xlnet import XlnetObjective

OBJECTIVES: dict[str, type[Objective]] = {
    cls.family: cls for cls in (
        BertObjective, RobertaObjective, MacbertObjective, MengziObjective, ErnieObjective,
        AlbertObjective, ElectraObjective, XlnetObjective, T5Objective, NezhaObjective,
    )
}


# What each family learns from (the report's "objective" column).
DESCRIPTIONS: dict[str, str] = {
    "bert": "MLM, static masks + NSP",
    "roberta": "dynamic whole-word MLM",
    "macbert": "MLM as correction (similar chars) + SOP",
    "mengzi": "whole-word MLM + POS tagging",
    "ernie": "knowledge (entity/phrase) masking + NSP",
    "albert": "n-gram MLM + SOP",
    "electra": "replaced-token detection",
    "xlnet": "permutation LM",
    "t5": "span corruption",
    "nezha": "whole-word MLM",
}


def objective_for(family: str, tokenizer: Tokenizer, max_len: int = 128, **options: Any) -> Objective:
    """The pre-training objective of `family` over the shared tokenizer; `options` are the
    family's own (mlm_probability, BERT's mask_seed, MacBERT's similar_k, ELECTRA's
    generator_fraction)."""
    if family not in OBJECTIVES:
        raise ValueError(f"no pre-training objective for {family!r}; families: {', '.join(BACKBONES)}")
    return OBJECTIVES[family](tokenizer, max_len, **options)

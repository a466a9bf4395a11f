"""Stage quantize: int8 versions (torch.ao dynamic, ONNX Runtime dynamic) of a trained backbone.

Quality metrics (deterministic): test accuracy of fp32 / torch int8 / ORT int8 and their agreement
with fp32, sizes on disk in bytes of the trained (mini) model and of the paper's base config (random
weights: real sizes, accuracy n/a). Timing JSON: seconds per sample at batch 1 and 64 of all three,
for the trained model and the base config, measured in this one run on this machine.
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import torch

from zhbench import params as P
from zhbench import stage
from zhbench.data.thucnews import read_labels
from zhbench.evaluate import write_timing
from zhbench.io import BadInputError, write_json
from zhbench.runtime import seed_everything, set_threads


def build_parser():
    p = stage.parser(__doc__)
    p.add_argument("--model", required=True, help="trained fp32 checkpoint dir (save_classifier layout + tokenizer.json)")
    p.add_argument("--data", required=True, help="processed dataset dir (labels.txt, <granularity>/test.tsv)")
    p.add_argument("--granularity", required=True, help="token granularity of the checkpoint (char|word)")
    p.add_argument("--out-torch", required=True, help="torch int8 model dir to write")
    p.add_argument("--out-onnx", required=True, help="ONNX dir to write (model.onnx fp32 + model_int8.onnx)")
    p.add_argument("--metrics", required=True, help="quality metrics JSON (accuracies, sizes)")
    p.add_argument("--timing", required=True, help="timing JSON (seconds per sample at batch 1 / 64)")
    return p


def run(args, params):
    from zhbench import quantize as Q
    from zhbench.encoders import load_encoder
    from zhbench.features import encode_split
    from zhbench.models.backbones import load_classifier
    from zhbench.devices import device_name

    cfg = P.section(params, "quantize")
    seed = int(P.section(params, "seed"))
    seed_everything(seed)
    set_threads(int(cfg.get("threads", 1)))

    model_dir = Path(args.model)
    if not (model_dir / "zhbench.json").is_file():
        raise BadInputError(model_dir, None, "expected a trained checkpoint dir (zhbench.json); train the backbone first")
    labels = read_labels(Path(args.data) / "labels.txt")
    model, extra = load_classifier(model_dir)
    if model.num_labels != len(labels):
        raise ValueError(f"{model_dir}: the head has {model.num_labels} outputs, labels.txt has {len(labels)} labels")
    max_len = int(extra["max_len"])
    encoder = load_encoder(model_dir, extra)
    test = encode_split(encoder, encoder.input_file(args.data, "test"), max_len, len(labels), encoder.granularity)
    if cfg.get("max_test_rows"):
        test = test.subset(range(min(len(test), int(cfg["max_test_rows"]))))

    qmodel = Q.quantize_torch(model)
    Q.save_torch_int8(qmodel, model_dir, args.out_torch)
    Q.save_onnx(model, model_dir, args.out_onnx, max_len)
    # score the reloaded artefacts: what is on disk is what the numbers describe
    qmodel, _ = Q.load_torch_int8(args.out_torch)
    ort_int8 = Q.OrtClassifier(Path(args.out_onnx) / Q.ONNX_INT8)
    variants = {"fp32": model, "torch_int8": qmodel, "ort_int8": ort_int8}
    # int8 rows one at a time, as the server answers them (see Q.INT8_BATCH_SIZE)
    logits = {k: Q.predict_logits(v, test.input_ids, test.attention_mask,
                                  batch_size=128 if k == "fp32" else Q.INT8_BATCH_SIZE) for k, v in variants.items()}
    preds = {k: v.argmax(1) for k, v in logits.items()}
    onnx_dir = Path(args.out_onnx)
    mini_sizes = {
        "fp32_bytes": Q.state_dict_bytes(model),
        "torch_int8_bytes": Q.state_dict_bytes(qmodel),
        "onnx_fp32_bytes": (onnx_dir / Q.ONNX_FP32).stat().st_size,
        "ort_int8_bytes": (onnx_dir / Q.ONNX_INT8).stat().st_size,
    }
    mini_sizes["torch_int8_ratio"] = mini_sizes["fp32_bytes"] / mini_sizes["torch_int8_bytes"]
    mini_sizes["ort_int8_ratio"] = mini_sizes["fp32_bytes"] / mini_sizes["ort_int8_bytes"]
    metrics = {
        "model": f"{args.granularity}/{extra.get('backbone', model.family)}",
        "backbone": model.family,
        "granularity": args.granularity,
        "trained": {
            "size": extra.get("size", "mini"),
            "test_accuracy": {k: Q.accuracy(v, test.labels) for k, v in logits.items()},
            "agreement_with_fp32": {k: float((p == preds["fp32"]).float().mean()) for k, p in preds.items() if k != "fp32"},
            "test_rows": len(test),
            "size_bytes": mini_sizes,
        },
    }
    lat_cfg = dict(min_samples=int(cfg.get("timing_min_samples", 64)), max_seconds=float(cfg.get("timing_max_seconds", 20)))
    timing = {"device": device_name(), "threads": torch.get_num_threads(), "seq_len": max_len,
              "trained": Q.compare_latency(variants, test.input_ids, test.attention_mask, **lat_cfg)}
    stage.log.info("trained: acc %s, sizes %s", metrics["trained"]["test_accuracy"], mini_sizes)

    if cfg.get("base_config", True):
        base = Q.build_base_classifier(model.family, len(labels), max_len, seed)
        qbase = Q.quantize_torch(base)
        with tempfile.TemporaryDirectory() as d:
            Q.export_onnx(base, Path(d) / Q.ONNX_FP32, max_len)
            Q.quantize_onnx(Path(d) / Q.ONNX_FP32, Path(d) / Q.ONNX_INT8)
            sizes = {"fp32_bytes": Q.state_dict_bytes(base), "torch_int8_bytes": Q.state_dict_bytes(qbase),
                     "onnx_fp32_bytes": (Path(d) / Q.ONNX_FP32).stat().st_size,
                     "ort_int8_bytes": (Path(d) / Q.ONNX_INT8).stat().st_size}
            sizes["torch_int8_ratio"] = sizes["fp32_bytes"] / sizes["torch_int8_bytes"]
            sizes["ort_int8_ratio"] = sizes["fp32_bytes"] / sizes["ort_int8_bytes"]
            metrics["base"] = {"size": "base", "test_accuracy": "n/a (random weights: sizes and speed only)",
                               "size_bytes": sizes}
            ids, mask = Q.random_inputs(base.backbone.config.vocab_size, 64, max_len, seed)
            timing["base"] = Q.compare_latency({"fp32": base, "torch_int8": qbase,
                                                "ort_int8": Q.OrtClassifier(Path(d) / Q.ONNX_INT8)}, ids, mask, **lat_cfg)
        stage.log.info("base: sizes %s", metrics["base"]["size_bytes"])

    write_json(args.metrics, metrics)
    write_timing(args.timing, timing)


if __name__ == "__main__":
    sys.exit(stage.entry_point(run, build_parser)())

"""Stage evaluate_backbone: dev + test metrics of a trained backbone checkpoint, and its timings.

Metrics (same shape as the baselines, plus each split's mean cross-entropy) are byte-stable across
reruns; inference time per sample and feature load times (with / without the cache) go to --timing.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path


from zhbench import params as P
from zhbench import stage
from zhbench.data.thucnews import read_labels
from zhbench.evaluate import classification_report, write_evaluation, write_timing
from zhbench.features import load_features
from zhbench.runtime import seed_everything, set_threads
from zhbench.classify import backbone_settings, predict
from zhbench.encoders import load_encoder
from zhbench.devices import device_name, resolve_device


def build_parser():
    p = stage.parser(__doc__)
    p.add_argument("--data", required=True, help="processed dataset directory (labels.txt, <granularity>/{dev,test}.tsv)")
    p.add_argument("--model-dir", required=True, help="checkpoint directory written by train_backbone (holds tokenizer.json)")
    p.add_argument("--cache", required=True, help="feature cache directory (shared with train_backbone)")
    p.add_argument("--metrics", required=True, help="metrics JSON to write (dev and test reports)")
    p.add_argument("--timing", required=True, help="JSON of measured times (inference per sample, feature loading)")
    p.add_argument("--confusion", required=True, help="test confusion CSV (actual,predicted rows) for dvc plots")
    p.add_argument("--figure", required=True, help="test confusion-matrix heat map PNG")
    return p


def run(args, params):
    from zhbench.models.backbones import load_classifier

    model, extra = load_classifier(args.model_dir)
    backbone, granularity, max_len = extra["backbone"], extra["granularity"], int(extra["max_len"])
    seed = int(P.section(params, "seed"))
    cfg = backbone_settings(P.section(params, "backbones"), backbone, granularity, seed).train
    seed_everything(seed)
    set_threads(cfg.threads)
    model.to(resolve_device(cfg.device))
    batch_size = cfg.eval_batch_size or 2 * cfg.batch_size

    data = Path(args.data)
    labels = read_labels(data / "labels.txt")
    if labels != extra["labels"]:
        raise ValueError(f"{args.model_dir}: trained on labels {extra['labels']}, but {data / 'labels.txt'} has {labels}")
    encoder = load_encoder(args.model_dir, extra)

    reports, timing = {}, {"device": device_name(), "threads": cfg.threads, "batch_size": batch_size}
    for split in ("dev", "test"):
        tsv = encoder.input_file(data, split)
        # Uncached encode, then the cache (written now if train_backbone has not), then a timed
        # cache read: the with/without-cache comparison on the same split and machine.
        _, uncached = load_features(tsv, encoder, max_len, granularity, len(labels))
        load_features(tsv, encoder, max_len, granularity, len(labels), args.cache)
        features, cached = load_features(tsv, encoder, max_len, granularity, len(labels), args.cache)
        if not cached.cache_hit:
            raise RuntimeError(f"feature cache {args.cache} did not keep {tsv}; is the directory writable?")

        start = time.perf_counter()
        logits, loss = predict(model, features, batch_size, cfg.dynamic_padding, cfg.precision)
        seconds = time.perf_counter() - start
        reports[split] = classification_report(features.labels.tolist(), logits.argmax(dim=1).tolist(), labels, loss=loss)
        timing[split] = {
            "samples": len(features),
            "inference_seconds": seconds,
            "inference_time_per_sample": seconds / len(features),
            "feature_load_seconds_uncached": uncached.seconds,
            "feature_load_seconds_cached": cached.seconds,
        }
        stage.log.info("%s %s/%s: acc %.4f, loss %.4f, %.2f ms/sample", split, backbone, granularity,
                       reports[split]["accuracy"], loss, 1000 * seconds / len(features))

    write_evaluation(args.metrics, args.confusion, args.figure, reports,
                     extra={"model": backbone, "granularity": granularity, "max_len": max_len,
                            "size": extra.get("size"), "parameters": extra.get("parameters")})
    write_timing(args.timing, timing)


if __name__ == "__main__":
    sys.exit(stage.entry_point(run, build_parser)())

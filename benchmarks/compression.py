"""Compression benchmark: one run, side by side, ratios printed (no assertions).

1. BERT base config (random weights: real shapes): fp32 vs torch int8 (default and oneDNN engine) vs
   ORT int8 latency at batch 1 and 64 (target >= 4x at batch 64) and size ratios (targets >= 2.68x
   torch int8, >= 3.9x ORT int8).
2. TextCNN student (seed config: 300-d embedding, 2/3/4 x 512) vs the base-config teacher, per sample
   (target >= 10x).
3. FastBERT speed 0.5 vs 0: speed-up and accuracy delta, on a trained mini teacher if given
   (--fastbert-teacher DIR with --data DIR).

    python benchmarks/compression.py [--threads 2] [--seq-len 32] [--fastbert-teacher models/.../bert --data data/processed/thucnews10]
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2, help="torch / ORT intra-op threads")
    ap.add_argument("--seq-len", type=int, default=32, help="tokens per title (incl. [CLS]/[SEP])")
    ap.add_argument("--max-seconds", type=float, default=20.0, help="time budget per measurement")
    ap.add_argument("--fastbert-teacher", default=None, help="trained BERT-family checkpoint dir (optional)")
    ap.add_argument("--data", default=None, help="processed dataset dir for the FastBERT part")
    ap.add_argument("--granularity", default="char")
    ap.add_argument("--fastbert-train-rows", type=int, default=5000, help="rows of stage-1 self-distillation")
    args = ap.parse_args(argv)

    import warnings
    warnings.filterwarnings("ignore")
    from zhbench import quantize as Q
    from zhbench.models.textcnn import TextCNN, TextCNNConfig

    torch.set_num_threads(args.threads)
    print(f"threads {args.threads}, seq len {args.seq_len}, torch {torch.__version__}")

    # 1. quantization on the base config
    base = Q.build_base_classifier("bert", 10, args.seq_len)
    qbase = Q.quantize_torch(base)  # torch's default engine ("x86": fbgemm kernels)
    # oneDNN's int8 kernels use AMX / VNNI where the CPU has them; packed weights belong to the engine
    # they were quantized under, so this copy only runs under it (switched around each call below).
    torch.backends.quantized.engine, default_engine = "onednn", torch.backends.quantized.engine
    qbase_onednn = Q.quantize_torch(base)
    torch.backends.quantized.engine = default_engine

    def onednn(ids, mask):
        torch.backends.quantized.engine = "onednn"
        try:
            return qbase_onednn(ids, mask)
        finally:
            torch.backends.quantized.engine = default_engine
    ids, mask = Q.random_inputs(base.backbone.config.vocab_size, 64, args.seq_len)
    with tempfile.TemporaryDirectory() as d:
        fp32_onnx, int8_onnx = Path(d) / Q.ONNX_FP32, Path(d) / Q.ONNX_INT8
        Q.export_onnx(base, fp32_onnx, args.seq_len)
        Q.quantize_onnx(fp32_onnx, int8_onnx)
        sizes = {"fp32": Q.state_dict_bytes(base), "torch_int8": Q.state_dict_bytes(qbase),
                 "torch_int8_onednn": Q.state_dict_bytes(qbase_onednn), "ort_int8": int8_onnx.stat().st_size}
        lat = Q.compare_latency({"fp32": base, "torch_int8": qbase, "torch_int8_onednn": onednn,
                                 "ort_int8": Q.OrtClassifier(int8_onnx, args.threads)},
                                ids, mask, max_seconds=args.max_seconds)
    print("\n== int8 quantization, BERT base config (bert-base-chinese shape, random weights)")
    print(f"{'':18}{'size MiB':>10}{'ratio':>8}{'b1 ms/sample':>14}{'x':>7}{'b64 ms/sample':>15}{'x':>7}")
    for k in ("fp32", "torch_int8", "torch_int8_onednn", "ort_int8"):
        b1, b64 = lat["batch_1"], lat["batch_64"]
        print(f"{k:18}{sizes[k] / 2**20:10.1f}{sizes['fp32'] / sizes[k]:8.2f}{1000 * b1[k]:14.2f}"
              f"{b1['fp32'] / b1[k]:7.2f}{1000 * b64[k]:15.2f}{b64['fp32'] / b64[k]:7.2f}")
    print("targets: batch-64 speed-up >= 4x; size ratio >= 2.68x (torch int8), >= 3.9x (ORT int8)")

    # 2. TextCNN student vs base teacher
    student = TextCNN(TextCNNConfig(vocab_size=21128, num_labels=10)).eval()
    s_lat = {bs: Q.time_per_sample(lambda i, m: student(i), ids, mask, bs, max_seconds=args.max_seconds) for bs in (1, 64)}
    print("\n== TextCNN student (300-d, 2/3/4 x 512) vs BERT base teacher (fp32)")
    for bs in (1, 64):
        t = lat[f"batch_{bs}"]["fp32"]
        print(f"batch {bs:2}: student {1000 * s_lat[bs]:.3f} ms/sample, teacher {1000 * t:.2f} ms/sample, "
              f"speed-up {t / s_lat[bs]:.1f}x (target >= 10x)")

    # 3. FastBERT
    if args.fastbert_teacher and args.data:
        from zhbench.data.thucnews import read_labels
        from zhbench.distill import load_teacher
        from zhbench.features import encode_split
        from zhbench.models.fastbert import FastBert, FastBertTrainConfig, evaluate_speed, self_distill, time_per_record

        data = Path(args.data)
        labels = read_labels(data / "labels.txt")
        teacher, extra = load_teacher(args.fastbert_teacher, labels)
        tok = Path(args.fastbert_teacher) / "tokenizer.json"
        train = encode_split(tok, data / args.granularity / "train.tsv", int(extra["max_len"]), len(labels))
        test = encode_split(tok, data / args.granularity / "test.tsv", int(extra["max_len"]), len(labels))
        train = train.subset(range(min(len(train), args.fastbert_train_rows)))
        fb = FastBert(teacher)
        self_distill(fb, train.input_ids, train.attention_mask, FastBertTrainConfig(threads=args.threads), progress=False)
        r = {s: evaluate_speed(fb, test.input_ids, test.attention_mask, test.labels, s) for s in (0.0, 0.5)}
        t = time_per_record(fb, test.input_ids, test.attention_mask, [0.0, 0.5], max_records=1000)
        print(f"\n== FastBERT on {args.fastbert_teacher} ({fb.num_layers} layers), batch 1")
        for s in (0.0, 0.5):
            print(f"speed {s}: acc {r[s]['accuracy']:.4f}, avg exit layer {r[s]['avg_exit_layer']:.2f}, "
                  f"FLOPs {r[s]['flops_ratio']:.3f}, {1000 * t[s]:.2f} ms/record")
        print(f"speed 0.5 vs 0: speed-up {t[0.0] / t[0.5]:.2f}x, accuracy delta {r[0.5]['accuracy'] - r[0.0]['accuracy']:+.4f}")
    else:
        print("\n== FastBERT: skipped (give --fastbert-teacher DIR --data DIR for a trained mini teacher)")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Times the benchmark models in LiteRT (XNNPACK, the default resolver) and in sparq-run, side by
side in one sitting, alternating the two so machine load affects both alike.

  python3 tools/bench_litert.py [--zoo DIR] [--runs N] [--threads 1,2] [--models a,b,...]

Needs: pip install -r ../shared/oracle/requirements.txt (ai-edge-litert), and a release build of
sparq-run (cargo build --release --bin sparq-run). Prints one line per model and thread count:
the median over the rounds of LiteRT-XNNPACK's and sparq's median invoke ms, and the median of the
rounds' ratios (sparq / LiteRT) with their range.
"""
import argparse, json, os, statistics, subprocess, sys, time

import numpy as np

MODELS = [
    "mobilenet_v2_1.0_224_float32",
    "mobilenet_v2_1.0_224_fp16",
    "mobilenet_v2_1.0_224_int8",
    "mobilenet_v2_1.0_224_dynamic",
    "mobilenet_v3_small_1.0_224_float32",
    "mobilenet_v3_small_1.0_224_int8",
]


def litert_interpreter(path, threads):
    from ai_edge_litert.interpreter import Interpreter
    it = Interpreter(model_path=path, num_threads=threads)
    it.allocate_tensors()
    rng = np.random.default_rng(0)
    for d in it.get_input_details():
        dt = np.dtype(d["dtype"])
        if dt.kind == "f":
            x = rng.uniform(-1, 1, d["shape"]).astype(dt)
        else:
            info = np.iinfo(dt)
            x = rng.integers(info.min, info.max, d["shape"], endpoint=True).astype(dt)
        it.set_tensor(d["index"], x)
    return it


def litert_ms(it, runs):
    for _ in range(max(3, runs // 10)):
        it.invoke()
    ts = []
    for _ in range(runs):
        t = time.perf_counter()
        it.invoke()
        ts.append((time.perf_counter() - t) * 1e3)
    return statistics.median(ts)


def sparq_ms(runner, path, threads, runs):
    out = subprocess.run(
        [runner, path, "--bench", "--runs", str(runs), "--warmup", str(max(3, runs // 10)),
         "--threads", str(threads), "--json"],
        check=True, capture_output=True, text=True).stdout
    return json.loads(out)["p50_ms"]


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(here)
    ap = argparse.ArgumentParser()
    ap.add_argument("--zoo", default=os.environ.get("SPARQ_ZOO", os.path.join(root, "..", "shared", "zoo")))
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--runner", default=os.path.join(root, "target", "release", "sparq-run"))
    a = ap.parse_args()
    if not os.path.exists(a.runner):
        sys.exit(f"{a.runner} not found: cargo build --release --bin sparq-run")
    print(f"{'model':<38} {'T':>2} {'LiteRT ms':>10} {'sparq ms':>10} {'ratio':>6}  ratio range")
    for name in a.models.split(","):
        path = os.path.join(a.zoo, "models", name + ".tflite")
        for t in [int(v) for v in a.threads.split(",")]:
            it = litert_interpreter(path, t)
            lts, sqs = [], []
            for _ in range(max(1, a.rounds)):
                lts.append(litert_ms(it, a.runs))
                sqs.append(sparq_ms(a.runner, path, t, a.runs))
            ratios = [q / l for q, l in zip(sqs, lts)]
            lt, sq, r = (statistics.median(v) for v in (lts, sqs, ratios))
            print(f"{name:<38} {t:>2} {lt:>10.2f} {sq:>10.2f} {r:>6.2f}  "
                  f"{min(ratios):.2f}-{max(ratios):.2f}", flush=True)

if __name__ == "__main__":
    main()

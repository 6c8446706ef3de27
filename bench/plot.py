#!/usr/bin/env python3
"""Draws docs/benchmarks.png (B3–B5) from the last measurements.

    cargo bench --bench roundtrip            # B3 and B5 (criterion keeps them in target/criterion)
    bash bench/compare.sh > /tmp/compare.md  # B4 and process start-up
    pip install matplotlib && python3 bench/plot.py /tmp/compare.md
"""
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ROOT = os.path.join(os.path.dirname(__file__), "..")
CRITERION = os.path.join(ROOT, "target", "criterion")


def median_ns(group, bench, param=None):
    parts = [CRITERION, group, bench] + ([param] if param else []) + ["new", "estimates.json"]
    with open(os.path.join(*parts)) as f:
        return json.load(f)["median"]["point_estimate"]


def compare_table(path):
    rows, startup = {}, {}
    for line in open(path):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[1].replace(".", "").isdigit():
            rows[cells[0]] = [float(c) for c in cells[1:4]]
        elif len(cells) == 2 and cells[1].replace(".", "").isdigit():
            startup[cells[0]] = float(cells[1])
    return rows, startup


def main():
    rows, startup = compare_table(sys.argv[1])
    fig, axes = plt.subplots(1, 3, figsize=(16, 5))

    ax = axes[0]
    ops = ["sys.env.get", "sys.now", "async sys.sleep(0)"]
    off = [10_000 / (median_ns("B3 syscalls", o, "audit off") / 1e9) / 1000 for o in ops]
    on = [10_000 / (median_ns("B3 syscalls", o, "audit on") / 1e9) / 1000 for o in ops]
    x = range(len(ops))
    ax.bar([i - 0.2 for i in x], off, 0.4, label="audit off")
    ax.bar([i + 0.2 for i in x], on, 0.4, label="audit on")
    # Deno.env.get and v8box's sys.env.get from compare.sh (100,000 calls, one process each).
    if "env-get-100k" in rows:
        v8, deno = rows["env-get-100k"][0], rows["env-get-100k"][1]
        n = len(ops)
        ax.bar([n - 0.2], [100_000 / v8], 0.4, color="C0")
        ax.bar([n + 0.2], [100_000 / deno], 0.4, color="C3", label="Deno.env.get")
        x = range(n + 1)
        ops = ops + ["env.get from the CLI,\n100,000 calls:\nv8box | Deno"]
    ops = [o.replace("async sys.", "async\nsys.") for o in ops]
    ax.set_xticks(list(x), ops, fontsize=8)
    ax.set_ylabel("thousand calls per second (higher is better)")
    ax.set_title("B3 full syscalls, per worker")
    ax.legend()

    ax = axes[1]
    cases = [c for c in rows if c != "env-get-100k"]
    for k, (name, color) in enumerate([("v8box", "C0"), ("node", "C2")]):
        col = 0 if name == "v8box" else 2
        ax.bar([i + (k - 0.5) * 0.4 for i in range(len(cases))], [rows[c][col] / rows[c][1] for c in cases], 0.4, label=name, color=color)
    ax.axhline(1.0, color="C1", label="deno (= 1)")
    ax.set_xticks(range(len(cases)), [c.replace("-", "\n", 1) for c in cases])
    ax.set_ylabel("time relative to Deno's (lower is better)")
    ax.set_title("B4 the same work in v8box, Deno, Node")
    ax.legend()

    ax = axes[2]
    labels = ["worker from snapshot\n+ hello (in-process)", "bare worker\n(in-process)",
              "warm worker: fresh context\nin a kept isolate"] + [k.replace(" (in-process, per context)", "\n(per context)") for k in startup]
    values = [median_ns("B5 start-up", "v8box__run_ worker + sys prelude + hello") / 1e6,
              median_ns("B5 start-up", "bare worker_ create, run hello, drop") / 1e6,
              median_ns("B5 start-up", "v8box__run_warm_ fresh context in a kept isolate + hello") / 1e6] + list(startup.values())
    ax.barh(range(len(labels)), values, color=["C0", "C0", "C0"] + ["C7"] * len(startup))
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xscale("log")
    ax.axvline(1.0, color="C3", linestyle="--", label="B5 target: p50 ≤ 1 ms in-process")
    ax.legend(loc="lower right", fontsize=8)
    ax.set_xlabel("milliseconds, log scale (lower is better)")
    ax.set_title("B5 start-up")
    for i, v in enumerate(values):
        ax.text(v, i, f" {v:.2f}" if v < 1 else f" {v:.1f}", va="center")

    fig.tight_layout()
    out = os.path.join(ROOT, "docs", "benchmarks.png")
    fig.savefig(out, dpi=90)
    print(out)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Measures v8box's limits against hostile scripts, for docs/SECURITY.md.

    cargo build --release && python3 bench/limits.py [path/to/v8box]

For each runaway script: how long after the timeout the process ended (the overshoot), and
its exit code. For each allocation bomb: the exit code and the process's peak RSS next to
--max-heap. Each case runs several times; the table shows the median and the worst.
"""
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

V8BOX = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "target", "release", "v8box")
RUNS = 5
TIMEOUT_MS = 500
MAX_HEAP_MB = 64

TIMEOUTS = {
    "while (true) {}": "while (true) {}",
    "endless microtasks": "(function f() { Promise.resolve().then(f); })();",
    "a timer re-arming itself": "(function again() { setTimeout(again, 0); })();",
    "catch-and-continue loop": "for (;;) { try { while (true) {} } catch (e) {} finally { continue; } }",
}

BOMBS = {
    "arrays": "const a = []; while (true) a.push(new Array(1e5).fill(1));",
    "strings": "const keep = []; let s = 'x'; while (true) { s = s + s.slice(0, 1000) + Math.random(); keep.push(s); }",
    "Maps": "const m = new Map(); for (let i = 0; ; i++) m.set(i, [i, i, i]);",
    "ArrayBuffers": "const b = []; while (true) b.push(new ArrayBuffer(1 << 20));",
}


def run(script, flags):
    with tempfile.NamedTemporaryFile("w", suffix=".js", delete=False) as f:
        f.write(script)
        path = f.name
    start = time.monotonic()
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    proc = subprocess.run([V8BOX, "run", *flags, path], capture_output=True)
    elapsed_ms = (time.monotonic() - start) * 1000
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    os.unlink(path)
    return proc.returncode, elapsed_ms, peak_kib if peak_kib > before else None


def main():
    print(f"v8box: {V8BOX}; {RUNS} runs each; machine: {os.cpu_count()} cores")
    print()
    print(f"| runaway script (--timeout={TIMEOUT_MS}) | exit code | ended after timeout + (median) | worst |")
    print("| --- | --- | --- | --- |")
    for name, script in TIMEOUTS.items():
        codes, over = set(), []
        for _ in range(RUNS):
            code, ms, _ = run(script, [f"--timeout={TIMEOUT_MS}"])
            codes.add(code)
            over.append(ms - TIMEOUT_MS)
        print(f"| {name} | {','.join(map(str, sorted(codes)))} | {statistics.median(over):.0f} ms | {max(over):.0f} ms |")
    print()
    print(f"| allocation bomb (--max-heap={MAX_HEAP_MB}) | exit code | time to stop (median) |")
    print("| --- | --- | --- |")
    for name, script in BOMBS.items():
        codes, times = set(), []
        for _ in range(RUNS):
            code, ms, _ = run(script, [f"--max-heap={MAX_HEAP_MB}", "--timeout=60000"])
            codes.add(code)
            times.append(ms)
        print(f"| {name} | {','.join(map(str, sorted(codes)))} | {statistics.median(times):.0f} ms |")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print()
    print(f"Peak RSS of any child process in this run: {peak / 1024:.0f} MiB (process start-up included).")


if __name__ == "__main__":
    main()

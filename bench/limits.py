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
    "ArrayBuffers, written": "const b = []; while (true) b.push(new Uint8Array(1 << 24).fill(1));",
    "one 1 GiB buffer, written": "new Uint8Array(2 ** 30).fill(1);",
    "WebAssembly.Memory": "const m = new WebAssembly.Memory({ initial: 1, maximum: 65536 }); while (true) { m.grow(256); new Uint8Array(m.buffer).fill(1); }",
    "resizable ArrayBuffers": "const b = []; while (true) { const r = new ArrayBuffer(0, { maxByteLength: 1 << 26 }); r.resize(1 << 26); new Uint8Array(r).fill(1); b.push(r); }",
    "growable SharedArrayBuffers": "const b = []; while (true) { const g = new SharedArrayBuffer(0, { maxByteLength: 1 << 26 }); g.grow(1 << 26); new Uint8Array(g).fill(1); b.push(g); }",
}


def run(script, flags):
    """(exit code, wall ms, the process's own peak RSS in KiB)."""
    with tempfile.NamedTemporaryFile("w", suffix=".js", delete=False) as f:
        f.write(script)
        path = f.name
    start = time.monotonic()
    proc = subprocess.Popen([V8BOX, "run", *flags, path], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed_ms = (time.monotonic() - start) * 1000
    os.unlink(path)
    return os.waitstatus_to_exitcode(status), elapsed_ms, usage.ru_maxrss


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
    _, _, idle = run("", [])
    print(f"| allocation bomb (--max-heap={MAX_HEAP_MB}) | exit code | time to stop (median) | peak RSS (worst) | over an idle run's {idle / 1024:.0f} MiB, as a multiple of --max-heap |")
    print("| --- | --- | --- | --- | --- |")
    for name, script in BOMBS.items():
        codes, times, peaks = set(), [], []
        for _ in range(RUNS):
            code, ms, peak = run(script, [f"--max-heap={MAX_HEAP_MB}", "--timeout=60000"])
            codes.add(code)
            times.append(ms)
            peaks.append(peak)
        worst = max(peaks)
        factor = (worst - idle) / 1024 / MAX_HEAP_MB
        print(f"| {name} | {','.join(map(str, sorted(codes)))} | {statistics.median(times):.0f} ms | {worst / 1024:.0f} MiB | {factor:.1f}x |")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print()
    print(f"Peak RSS of any child process in this run: {peak / 1024:.0f} MiB (process start-up included).")


if __name__ == "__main__":
    main()

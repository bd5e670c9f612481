"""Load and compile time as specs grow towards the documented limits: is the cost linear?

Run: `make bench` or `.venv/bin/python benchmarks/bench_limits.py [--quick]`. For each family of
generated specs it prints the time to load+check and to compile (NumPy), the time per unit
(layer, equation, repeat, KiB), and the ratio of the per-unit time at the largest size to the
per-unit time at the smallest measured in the same run: about 1 means linear, 10 at 100x the size
would mean quadratic. Families:
  layers   a model stacking N runs of a small RNN cell (`x = R(16) over x`)
  chain    a cell with N equations, each reading the one before (`v2 = tanh(v1) + 0.5 * v1`)
  repeat   a model with `repeat N { z = tanh(z) }`
  text     a file of N KiB: one cell and a long comment-padded body (the reader, parser and checker)
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import seqdsl  # noqa: E402

CELL = ["cell R(I = 16) {", "    in x: [I]", "    state h: [I] = zeros", "    param W, U: [I, I]",
        "    h = tanh(W @ x + U @ h[t-1])", "    out y = h", "}"]


def layers(n: int) -> str:
    body = ["model Deep(V = 50) {", "    in w: seq<int>", "    x = embed(w, V, 16)"]
    body += ["    x = R(16) over x"] * n + ["    out logits = linear(x, V)", "}"]
    return "\n".join(CELL + body) + "\n"


def chain(n: int) -> str:
    lines = ["cell Chain(I = 4) {", "    in x: [I]", "    state h: [I]", "    v0 = tanh(x + h[t-1])"]
    lines += [f"    v{i} = tanh(v{i - 1}) + 0.5 * v{i - 1}" for i in range(1, n)]
    lines += [f"    h = v{n - 1}", "    out y = h", "}"]
    return "\n".join(lines) + "\n"


def repeat(n: int) -> str:
    return ("model Rep(D = 4) {\n    in x: seq[D]\n    z = x\n"
            f"    repeat {n} {{\n        z = tanh(z)\n    }}\n    out y = z\n}}\n")


def text(kib: int) -> str:
    head = "\n".join(CELL) + "\n"
    pad = "# " + "x" * 60 + "\n"
    return head + pad * max(0, (kib * 1024 - len(head)) // len(pad))


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


FAMILIES = {
    "layers": (layers, (10, 100, 1000, 2000), "layer", True),
    "chain": (chain, (10, 100, 1000, 2400), "equation", True),  # 4 IR nodes an equation: 10,000 per load
    "repeat": (repeat, (10, 100, 1000, 9000), "repeat", True),
    "text": (text, (16, 128, 1000), "KiB", False),
}


def main() -> None:
    quick = "--quick" in sys.argv
    print(f"{'family':8} {'N':>6} {'load (s)':>9} {'compile (s)':>12} {'per unit (ms)':>14} {'vs smallest':>12}")
    for fam, (make, sizes, _unit, compiles) in FAMILIES.items():
        first = None
        warm = make(sizes[0])  # imports and caches paid before timing
        seqdsl.load(warm)
        if compiles:
            seqdsl.compile(warm)
        for n in sizes[:-1] if quick else sizes:
            src = make(n)
            t_load = timed(lambda: seqdsl.load(src))
            t_comp = timed(lambda: seqdsl.compile(src)) if compiles else 0.0
            per = (t_load + t_comp) / n * 1e3
            first = first or per
            print(f"{fam:8} {n:6d} {t_load:9.3f} {t_comp:12.3f} {per:14.3f} {per / first:11.2f}x")
    print("\nper-unit ratios near 1x mean the cost grows linearly with the spec (per unit of " +
          ", ".join(f"{f}: {u}" for f, (_, _, u, _) in FAMILIES.items()) + ")")


if __name__ == "__main__":
    main()

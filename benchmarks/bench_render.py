"""Render speed: an unrolled 50-step render of the attention seq2seq model to SVG, and the
rolled view of every spec. Targets: under 5 s and under 1 s each. Needs graphviz's `dot`.

Run: `.venv/bin/python benchmarks/bench_render.py`
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import seqdsl  # noqa: E402
from seqdsl.cli.cmd_render import write  # noqa: E402
from seqdsl.render import to_dot  # noqa: E402


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    tmp = Path(tempfile.mkdtemp())
    p = seqdsl.load(ROOT / "specs/attention.seq")
    for steps in (8, 50):
        t = timed(lambda: write(to_dot(p, "AttnTranslate", "unrolled", steps), tmp / "a.svg"))
        print(f"AttnTranslate unrolled, {steps:3d} steps -> SVG: {t:6.3f} s   (target < 5 s)")
    t = timed(lambda: write(to_dot(p, "BahdanauDecoder", "unrolled", 50, "gates"), tmp / "g.svg"))
    print(f"BahdanauDecoder unrolled gates, 50 steps -> SVG: {t:6.3f} s")
    print()
    print(f"{'rolled view -> SVG':40} {'seconds':>8}   (target < 1 s each)")
    for f in sorted((ROOT / "specs").glob("*.seq")):
        prog = seqdsl.load(f)
        for name, d in prog.definitions.items():
            if d.file != str(f):
                continue
            t = timed(lambda: write(to_dot(prog, name, "rolled"), tmp / "r.svg"))
            print(f"{f.name + ' ' + name:40} {t:8.3f}")
    print(f"\ntorch imported: {'torch' in sys.modules}")


if __name__ == "__main__":
    main()

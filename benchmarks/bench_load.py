"""Load-and-check time of every spec, and of generated specs with 10, 100, 1000 stacked layers.

Run: `make bench` or `.venv/bin/python benchmarks/bench_load.py`. Prints a table; also checks
that loading never imports torch. Targets: a standard spec under 20 ms warm; time per layer
roughly constant as the spec grows (linear cost); a cold `seqdsl check specs/lstm.seq` (a
fresh process, as on every save in an editor) at most 0.25 s, printed beside a bare
`python -c pass` measured in the same run.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import seqdsl  # noqa: E402


def timeit(fn, repeat=7) -> float:
    fn()  # warm
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def stacked(n: int) -> str:
    lines = ["cell R(I = 16) {", "    in x: [I]", "    state h: [I] = zeros", "    param W, U: [I, I]",
             "    h = tanh(W @ x + U @ h[t-1])", "    out y = h", "}", "model Deep(V = 50) {",
             "    in w: seq<int>", "    x = embed(w, V, 16)"]
    lines += ["    x = R(16) over x" for _ in range(n)]
    lines += ["    out logits = linear(x, V)", "}"]
    return "\n".join(lines) + "\n"


def main() -> None:
    print(f"{'spec':32} {'load+check (ms)':>16}")
    for f in sorted((ROOT / "specs").glob("*.seq")):
        print(f"{f.name:32} {timeit(lambda: seqdsl.load(f)) * 1e3:16.2f}")
    print()
    print(f"{'stacked layers':>14} {'load+check (ms)':>16} {'per layer (ms)':>15}")
    for n in (10, 100, 1000):
        text = stacked(n)
        t = timeit(lambda: seqdsl.load(text), repeat=3 if n == 1000 else 5)
        print(f"{n:14d} {t * 1e3:16.1f} {t * 1e3 / n:15.3f}")
    print(f"\ntorch imported by loading: {'torch' in sys.modules}")
    cold()


def _process(args, repeat=9) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, *args], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def cold() -> None:
    """A fresh process per run: what a user waits for on every save."""
    bare = _process(["-c", "pass"])
    check = _process(["-m", "seqdsl", "check", "specs/lstm.seq"])
    print(f"\ncold `seqdsl check specs/lstm.seq`: {check:.3f} s (target 0.25 s); bare python {bare:.3f} s; "
          f"seqdsl's own {check - bare:.3f} s")


if __name__ == "__main__":
    main()

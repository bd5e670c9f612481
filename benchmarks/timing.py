"""The timer every benchmark here shares.

In:  named functions of no arguments, how many rounds, how many warm-up rounds, and optionally a
     `sync()` called around each timed call (a GPU's queue drained).
Out: `alternate(fns, repeat, warmup=1, sync=None)` → name → the median of its `repeat` times in
     seconds. The functions run in turn within each round, so a burst of load elsewhere on the
     machine hits all of them, and ratios measured in one call are fair.
     `paired(fns, repeat, base, ...)` → (those medians, name → the median over the rounds of its
     time divided by `base`'s in the same round): a paired comparison, steadier than the ratio of
     two medians where the machine's speed drifts from round to round.
"""

from __future__ import annotations

import statistics
import time


def alternate(fns: dict, repeat: int, warmup: int = 1, sync=None) -> dict:
    return {k: statistics.median(v) for k, v in _rounds(fns, repeat, warmup, sync).items()}


def paired(fns: dict, repeat: int, base: str, warmup: int = 1, sync=None) -> tuple:
    times = _rounds(fns, repeat, warmup, sync)
    ratios = {k: statistics.median(t / b for t, b in zip(v, times[base])) for k, v in times.items()}
    return {k: statistics.median(v) for k, v in times.items()}, ratios


def _rounds(fns: dict, repeat: int, warmup: int, sync) -> dict:
    times = {k: [] for k in fns}
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    for _ in range(repeat):
        for k, fn in fns.items():
            if sync:
                sync()
            t0 = time.perf_counter()
            fn()
            if sync:
                sync()
            times[k].append(time.perf_counter() - t0)
    return times

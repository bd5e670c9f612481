"""What a run shows while it trains: a progress bar with the loss, tokens/s and the ETA, and lines.

In:  whether to show anything, the total and already-done steps; then each step's loss and tokens,
     and lines to print (epoch results, the summary).
Out: `Progress` with `update(loss, tokens, epoch)`, `write(line)` and `close()`. The bar is tqdm's
     (imported here, when a run starts; `pip install tqdm`, the `train` extra); without tqdm the
     lines are printed alone. Everything goes to stderr, so stdout stays for results.
"""

from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, enabled: bool, total: int, done: int, bar: bool = True):
        self.enabled, self.bar = enabled, None
        self.tokens, self.t0 = 0, time.perf_counter()
        if not (enabled and bar):
            return
        try:
            from tqdm import tqdm
        except ImportError:
            return
        self.bar = tqdm(total=total, initial=done, unit="step", dynamic_ncols=True, file=sys.stderr,
                        smoothing=0.1, mininterval=0.2)

    def update(self, loss: float, tokens: int, epoch: int) -> None:
        self.tokens += tokens
        if self.bar is None:
            return
        rate = self.tokens / max(time.perf_counter() - self.t0, 1e-9)
        self.bar.set_description(f"epoch {epoch + 1}", refresh=False)
        self.bar.set_postfix_str(f"loss {loss:.4f}, {rate:,.0f} tok/s", refresh=False)
        self.bar.update(1)

    def tokens_per_s(self) -> float:
        return self.tokens / max(time.perf_counter() - self.t0, 1e-9)

    def write(self, line: str) -> None:
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.write(line, file=sys.stderr)
        else:
            print(line, file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

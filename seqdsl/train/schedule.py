"""The learning-rate schedule, the same arithmetic for both backends.

In:  the kind (None, "cosine" or "plateau"), warmup steps, the total number of steps, and at the
     end of each epoch the validation loss (for "plateau").
Out: `Schedule.factor(step)`: what the base learning rate is multiplied by at step `step`
     (0-based); `Schedule.epoch_end(valid_loss)` → True when a plateau cut the rate;
     `state()` / `load(state)`: a JSON-able dict (everything it remembers).

The rate at step s is lr · factor(s):
  - warmup (s < W): (s + 1) / W, linearly up to lr;
  - then "cosine": ½ (1 + cos(π · (s − W) / max(1, S − W))) over the S total steps, down to 0;
  - "plateau": `scale`, multiplied by FACTOR when the validation loss has not improved by a
    relative THRESHOLD for more than PATIENCE epochs (torch's ReduceLROnPlateau in mode "min",
    threshold_mode "rel", with these constants), never below MIN_SCALE;
  - none: 1.
The factor is a pure function of the step and the plateau state, so a resumed run computes
the same rate as one never interrupted.
"""

from __future__ import annotations

import math

KINDS = (None, "cosine", "plateau")
FACTOR = 0.5
PATIENCE = 2
THRESHOLD = 1e-4
MIN_SCALE = 1e-4


class Schedule:
    def __init__(self, kind: str | None, warmup: int, total: int):
        self.kind, self.warmup, self.total = kind, int(warmup), int(total)
        self.scale, self.best, self.bad_epochs = 1.0, math.inf, 0

    def factor(self, step: int) -> float:
        if step < self.warmup:
            return (step + 1) / self.warmup * self.scale
        if self.kind == "cosine":
            progress = min(1.0, (step - self.warmup) / max(1, self.total - self.warmup))
            return 0.5 * (1.0 + math.cos(math.pi * progress))
        return self.scale

    def epoch_end(self, valid_loss: float | None) -> bool:
        """For "plateau": count an epoch without improvement and cut the rate after PATIENCE of them."""
        if self.kind != "plateau" or valid_loss is None:
            return False
        if valid_loss < self.best * (1.0 - THRESHOLD):
            self.best, self.bad_epochs = valid_loss, 0
            return False
        self.bad_epochs += 1
        if self.bad_epochs > PATIENCE and self.scale > MIN_SCALE:
            self.scale, self.bad_epochs = max(MIN_SCALE, self.scale * FACTOR), 0
            return True
        return False

    def state(self) -> dict:
        return {"kind": self.kind, "warmup": self.warmup, "total": self.total, "scale": self.scale,
                "best": self.best, "bad_epochs": self.bad_epochs}

    def load(self, state: dict) -> None:
        self.scale, self.best, self.bad_epochs = float(state["scale"]), float(state["best"]), int(state["bad_epochs"])

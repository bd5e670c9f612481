"""Validation metrics that fit a model's predicted outputs, and the metrics log.

In:  the model's predictions (`exe._ns["PREDICTED"]`: name → {"dist", "per_step", ...}), then per
     validation batch its outputs (logits or means, NumPy), its loss parts and the batch.
Out: `Validation(predicted)`: `add(outputs, parts, batch)`, `result()` → {"loss": the sum of the
     parts, name: {"nll", and "token_acc", "seq_acc", "ppl" (categorical per step), "acc", "ppl"
     (categorical per sample) or "mse" (normal)}}; `MetricsLog(path)`: JSON lines appended with
     one write each, `sync()`, `offset()` and `truncate(offset)` (what a resumed run cuts back to).

Each output's part is averaged over its real positions across the whole set (a batch weighs as
many positions as it has); the perplexity is exp of that token NLL; the token accuracy counts the
real positions whose most likely class is the observed one, the exact-sequence accuracy the
sequences right at every real position; the MSE averages over real positions and vector entries.
"""

from __future__ import annotations

import json
import math
import os

import numpy as np

from ..errors import SpecError


def _mask(batch, name: str, shape: tuple) -> np.ndarray:
    """(B, T) True at the real positions of output `name` (from the lengths of its observed field)."""
    n = batch.lengths.get(name) if batch.lengths else None
    if n is None:
        return np.ones(shape[:2], dtype=bool)
    return np.arange(shape[1])[None, :] < np.asarray(n)[:, None]


class Validation:
    def __init__(self, predicted: dict):
        self.predicted = predicted
        self.sums = {k: {} for k in predicted}

    def _add(self, name: str, key: str, value: float) -> None:
        self.sums[name][key] = self.sums[name].get(key, 0.0) + float(value)

    def add(self, outputs: dict, parts: dict, batch) -> None:
        for name, p in self.predicted.items():
            out, obs = outputs[name], np.asarray(batch.inputs[name])
            if p["per_step"]:
                mask = _mask(batch, name, out.shape)
                count = int(mask.sum())
            else:
                mask, count = None, out.shape[0]
            self._add(name, "positions", count)
            self._add(name, "nll", parts[name] * count)
            if p["dist"] == "categorical":
                right = out.argmax(-1) == obs
                if mask is not None:
                    self._add(name, "right", (right & mask).sum())
                    self._add(name, "seqs_right", (right | ~mask).all(axis=1).sum())
                    self._add(name, "seqs", out.shape[0])
                else:
                    self._add(name, "right", right.sum())
            else:
                err = (out - obs) ** 2
                err = err.reshape(err.shape[:2 if mask is not None else 1] + (-1,))
                if mask is not None:
                    err = err * mask[..., None]
                self._add(name, "sq", err.sum())
                self._add(name, "entries", count * err.shape[-1])

    def result(self) -> dict:
        res, total = {}, 0.0
        for name, p in self.predicted.items():
            s = self.sums[name]
            n = max(s.get("positions", 0.0), 1.0)
            nll = s.get("nll", 0.0) / n
            total += nll
            r = {"nll": nll}
            if p["dist"] == "categorical":
                if p["per_step"]:
                    r["token_acc"] = s.get("right", 0.0) / n
                    r["seq_acc"] = s.get("seqs_right", 0.0) / max(s.get("seqs", 0.0), 1.0)
                else:
                    r["acc"] = s.get("right", 0.0) / n
                r["ppl"] = math.exp(nll) if nll < 700 else math.inf
            else:
                r["mse"] = s.get("sq", 0.0) / max(s.get("entries", 0.0), 1.0)
            res[name] = r
        return {"loss": total, **res}


def describe(valid: dict) -> str:
    """One line: `valid loss 1.234 | word: token acc 93.1%, exact 80.0%, ppl 1.62`."""
    names = {"token_acc": "token acc", "seq_acc": "exact", "acc": "acc", "ppl": "ppl", "mse": "mse"}
    parts = [f"valid loss {valid['loss']:.4f}"]
    for name, r in valid.items():
        if isinstance(r, dict):
            items = [f"{names[k]} {100 * v:.1f}%" if k.endswith("acc") else f"{names[k]} {v:.4g}"
                     for k, v in r.items() if k in names]
            parts.append(f"{name}: " + ", ".join(items))
    return " | ".join(parts)


class MetricsLog:
    """DIR/metrics.jsonl: each record one line, appended with a single write (a kill never leaves half a
    line behind the last checkpoint's offset, which is where a resumed run truncates it)."""

    def __init__(self, path, enabled: bool = True):
        self.path, self.enabled = path, enabled  # disabled: in all processes but the first of several
        self.fd = None

    def open(self, offset: int | None) -> None:
        if not self.enabled:
            return
        try:
            self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o666)
            os.ftruncate(self.fd, 0 if offset is None else min(offset, os.fstat(self.fd).st_size))
        except OSError as e:
            raise SpecError(f"cannot write the metrics log {self.path}: {e.strerror or e}") from None

    def write(self, record: dict) -> None:
        if self.fd is None:
            return
        data = (json.dumps(record, allow_nan=True) + "\n").encode("utf-8")
        try:
            os.write(self.fd, data)
        except OSError as e:
            raise SpecError(f"cannot write the metrics log {self.path}: {e.strerror or e}") from None

    def sync(self) -> int:
        """fsync the log; returns its size (the offset a checkpoint records)."""
        if self.fd is None:
            return 0
        try:
            os.fsync(self.fd)
            return os.fstat(self.fd).st_size
        except OSError as e:
            raise SpecError(f"cannot write the metrics log {self.path}: {e.strerror or e}") from None

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

"""Gradient descent in NumPy: Adam, AdamW and SGD with torch.optim's update formulas, and gradient-norm
clipping as torch.nn.utils.clip_grad_norm_ does it.

In:  the parameters (name → np.ndarray, updated in place), their gradients (name → np.ndarray) and
     the learning rate of the step.
Out: `make(kind, params, lr, weight_decay)` → an optimizer with `.lr`, `step(grads)`,
     `state()` → (tensors name → array, JSON-able dict) and `load(tensors, state)`;
     `total_norm(grads)` and `clip(grads, max_norm)` → the norm before clipping.

The arithmetic follows torch's single-tensor (CPU) implementations operation by operation
(torch/optim/adam.py `_single_tensor_adam`, sgd.py `_single_tensor_sgd`), so in float64 the two
backends take the same steps to rounding:

  Adam:  t += 1; g += wd·p (Adam) or p *= 1 − lr·wd (AdamW); m = m + (1−β1)(g − m);
         v = v·β2 + (1−β2)·g·g; p += −lr/(1−β1^t) · m / (√v / √(1−β2^t) + ε)
  SGD:   g += wd·p; b = g (first step) or b·μ + g; p += −lr·b
"""

from __future__ import annotations

import numpy as np

BETAS = (0.9, 0.999)
EPS = 1e-8
MOMENTUM = 0.9
DEFAULT_DECAY = {"adam": 0.0, "adamw": 0.01, "sgd": 0.0}


def total_norm(grads) -> float:
    """The 2-norm of all gradients together (the norm of the per-tensor norms, as torch computes it)."""
    norms = [np.linalg.norm(np.ravel(g)) for g in grads]
    return float(np.linalg.norm(np.asarray(norms))) if norms else 0.0


def clip(grads, max_norm: float) -> float:
    """Scale the gradients in place so their total norm is at most `max_norm`: multiplied by
    min(1, max_norm / (norm + 1e-6)), as torch.nn.utils.clip_grad_norm_; returns the norm before."""
    norm = total_norm(grads)
    coef = min(max_norm / (norm + 1e-6), 1.0)
    for g in grads:
        np.multiply(g, coef, out=g)
    return norm


class Adam:
    def __init__(self, params: dict, lr: float, weight_decay: float = 0.0, decoupled: bool = False):
        self.params, self.lr, self.weight_decay, self.decoupled = params, lr, weight_decay, decoupled
        self.t = 0
        self.m = {k: np.zeros_like(v) for k, v in params.items()}
        self.v = {k: np.zeros_like(v) for k, v in params.items()}

    def step(self, grads: dict) -> None:
        b1, b2 = BETAS
        self.t += 1
        bc1, bc2 = 1 - b1 ** float(self.t), 1 - b2 ** float(self.t)
        step_size, bc2_sqrt = self.lr / bc1, bc2 ** 0.5
        for k, p in self.params.items():
            g = grads[k]
            if self.weight_decay:
                if self.decoupled:
                    p *= 1 - self.lr * self.weight_decay
                else:
                    g = g + self.weight_decay * p
            m, v = self.m[k], self.v[k]
            m += (1 - b1) * (g - m)
            v *= b2
            v += (1 - b2) * g * g
            p += -step_size * (m / (np.sqrt(v) / bc2_sqrt + EPS))

    def state(self) -> tuple:
        tensors = {f"{k}/exp_avg": m for k, m in self.m.items()}
        tensors.update({f"{k}/exp_avg_sq": v for k, v in self.v.items()})
        return tensors, {"t": self.t}

    def load(self, tensors: dict, state: dict) -> None:
        self.t = int(state["t"])
        for k in self.params:
            self.m[k][...] = tensors[f"{k}/exp_avg"]
            self.v[k][...] = tensors[f"{k}/exp_avg_sq"]


class SGD:
    def __init__(self, params: dict, lr: float, weight_decay: float = 0.0, momentum: float = MOMENTUM):
        self.params, self.lr, self.weight_decay, self.momentum = params, lr, weight_decay, momentum
        self.buf: dict = {}

    def step(self, grads: dict) -> None:
        for k, p in self.params.items():
            g = grads[k]
            if self.weight_decay:
                g = g + self.weight_decay * p
            if self.momentum:
                if k not in self.buf:
                    self.buf[k] = np.array(g, copy=True)
                else:
                    self.buf[k] *= self.momentum
                    self.buf[k] += g
                g = self.buf[k]
            p += -self.lr * g

    def state(self) -> tuple:
        return {f"{k}/momentum_buffer": b for k, b in self.buf.items()}, {}

    def load(self, tensors: dict, state: dict) -> None:
        self.buf = {k: np.array(tensors[f"{k}/momentum_buffer"]) for k in self.params
                    if f"{k}/momentum_buffer" in tensors}


def make(kind: str, params: dict, lr: float, weight_decay: float):
    if kind == "sgd":
        return SGD(params, lr, weight_decay)
    return Adam(params, lr, weight_decay, decoupled=(kind == "adamw"))

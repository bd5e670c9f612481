"""The loss a model declares with `out y ~ ...`: the negative log-likelihood of the observed values.

In:  a module's `PREDICTED` and `OUTPUT_AXES`, its outputs (the distributions' parameters), the
     observed values by name, the lengths given to the call, and `xp`, the array namespace (numpy,
     or `TorchOps` for tensors).
Out: `nll(...)` → (total, {output: part}). Each part is averaged over the output's real positions
     (a per-step output over the steps within the lengths of the sequence its time axis follows;
     a per-sample output over the batch); the total is the sum of the parts. Categorical:
     −log softmax(logits)[y]; normal: ½((y − mean)/std)² + log std + ½ log 2π, summed over the
     vector. `nll_grad(...)` → d total / d output for each predicted output (NumPy), what
     `value_and_grad` backpropagates.
"""

from __future__ import annotations

import math

import numpy as np

from .validate import InputError


def observed_values(name: str, predicted: dict, given: dict, outputs: dict, to_numpy) -> dict:
    """The observed value of every predicted output, checked against the output's shape."""
    out = {}
    for k, p in predicted.items():
        if k not in given:
            raise InputError(f"{name}: the loss needs the observed '{k}' ({k}=...): it is what the model predicts")
        v = given[k]
        shape = tuple(outputs[k].shape)
        want = shape[:-1] if p["dist"] == "categorical" else shape
        if tuple(v.shape) != want:
            raise InputError(f"{name}: the observed '{k}' has shape {tuple(v.shape)}; expected {want}, the shape of "
                             f"its {'logits without the classes' if p['dist'] == 'categorical' else 'mean'}")
        a = to_numpy(v)
        if p["dist"] == "categorical" and (a.dtype.kind not in "iu" or (a < 0).any() or (a >= p["classes"]).any()):
            raise InputError(f"{name}: the observed '{k}' must hold class ids in [0, {p['classes']})")
        out[k] = v
    return out


def position_mask(ns: dict, k: str, p: dict, lengths: dict | None, shape) -> np.ndarray | None:
    """(B, T) booleans, true at output k's real positions; None when every position is real."""
    if not p["per_step"] or not lengths:
        return None
    axes = ns["OUTPUT_AXES"].get(k) or ()
    if not axes or axes[0] not in lengths:
        return None
    n = np.asarray(lengths[axes[0]])
    return np.arange(shape[1])[None, :] < n[:, None]


def nll(ns: dict, xp, outputs: dict, observed: dict, lengths: dict | None) -> tuple:
    parts = {}
    for k, p in ns["PREDICTED"].items():
        o, y = outputs[k], observed[k]
        if p["dist"] == "categorical":
            each = -xp.take_last(xp.log_softmax(o), y)
        else:
            z = (y - o) / p["std"]
            each = (0.5 * z * z).sum(-1) + o.shape[-1] * (math.log(p["std"]) + 0.5 * math.log(2 * math.pi))
        mask = position_mask(ns, k, p, lengths, tuple(o.shape))
        if mask is None:
            parts[k] = each.mean()
        else:
            # (a where, not a product: what an observed value holds at padding, NaN too, stays out)
            parts[k] = xp.keep(mask, each).sum() / float(mask.sum())
    total = sum(parts.values())
    return total, parts


def nll_grad(ns: dict, outputs: dict, observed: dict, lengths: dict | None) -> dict:
    """NumPy: d total / d output of each predicted output (0 at padded positions)."""
    grads = {}
    for k, p in ns["PREDICTED"].items():
        o, y = np.asarray(outputs[k]), np.asarray(observed[k])
        if p["dist"] == "categorical":
            e = np.exp(o - o.max(-1, keepdims=True))
            g = e / e.sum(-1, keepdims=True)
            np.put_along_axis(g, y[..., None], np.take_along_axis(g, y[..., None], -1) - 1, -1)
        else:
            g = (o - y) / (p["std"] ** 2)
        mask = position_mask(ns, k, p, lengths, o.shape)
        count = float(mask.sum()) if mask is not None else float(np.prod(o.shape[:-1]))
        if mask is not None:
            g = np.where(mask[..., None], g, 0)
        grads[k] = (g / count).astype(o.dtype)
    return grads


class NumpyOps:
    @staticmethod
    def log_softmax(x):
        m = x.max(-1, keepdims=True)
        z = x - m
        return z - np.log(np.exp(z).sum(-1, keepdims=True))

    @staticmethod
    def take_last(x, idx):
        return np.take_along_axis(x, np.asarray(idx)[..., None], -1)[..., 0]

    @staticmethod
    def float64(x):
        return x.astype(np.float64)

    @staticmethod
    def logsumexp(x):
        m = x.max(-1, keepdims=True)
        return (m + np.log(np.exp(x - m).sum(-1, keepdims=True)))[..., 0]

    @staticmethod
    def max_last(x):
        """(the largest value, its index) over the last axis."""
        i = x.argmax(-1)
        return NumpyOps.take_last(x, i), i

    @staticmethod
    def chosen_log_prob(x, idx):
        """log_softmax(x)[..., idx] without the whole log_softmax: x[idx] - logsumexp(x)."""
        return NumpyOps.take_last(x, idx) - NumpyOps.logsumexp(x)

    @staticmethod
    def keep(mask, values):
        """values where mask is true, else 0."""
        return np.where(mask, values, 0)

    @staticmethod
    def stack(xs, axis):
        return np.stack(xs, axis)


class TorchOps:
    @staticmethod
    def log_softmax(x):
        import torch

        return torch.log_softmax(x, -1)

    @staticmethod
    def take_last(x, idx):
        return x.gather(-1, idx.long().unsqueeze(-1)).squeeze(-1)

    @staticmethod
    def float64(x):
        return x.double()

    @staticmethod
    def logsumexp(x):
        import torch

        return torch.logsumexp(x, -1)

    @staticmethod
    def max_last(x):
        """(the largest value, its index) over the last axis."""
        return x.max(-1)

    @staticmethod
    def chosen_log_prob(x, idx):
        """log_softmax(x)[..., idx] without the whole log_softmax: x[idx] - logsumexp(x)."""
        return TorchOps.take_last(x, idx) - TorchOps.logsumexp(x)

    @staticmethod
    def keep(mask, values):
        """values where mask is true, else 0."""
        import torch

        return torch.where(torch.as_tensor(mask, device=values.device), values, torch.zeros((), dtype=values.dtype,
                                                                                              device=values.device))

    @staticmethod
    def stack(xs, axis):
        import torch

        return torch.stack(xs, axis)

"""The NumPy backend: the op → emitter table and helpers for generated NumPy code.

In:  nothing (tables only); used by `seqdsl.backends.codegen`.
Out: `EMITTER`, an `Emitter` whose generated modules import only numpy.
"""

from __future__ import annotations

from ..ops import Op
from .codegen import COMMON, Emitter
from .numpy_grad import GRAD_HELPERS

HELPERS = '''
def _full(shape, value, like):
    return np.full(shape, value, dtype=DTYPE)


def _sigmoid(x):
    return 0.5 * np.tanh(0.5 * x) + 0.5


def _softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _layernorm(x, gamma, beta, eps=1e-5):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * gamma + beta


def _onehot(tokens, size):
    return np.eye(size, dtype=DTYPE)[tokens]


def _positions(T, D):
    pos = np.arange(T, dtype=np.float64)[:, None]
    rate = np.exp(-np.log(10000.0) * (np.arange(0, D, 2, dtype=np.float64) / D))
    out = np.zeros((T, D))
    out[:, 0::2] = np.sin(pos * rate)
    out[:, 1::2] = np.cos(pos * rate[: D // 2])
    return out.astype(DTYPE)


def _attention(q, k, v, heads, causal):
    B, T, D = q.shape
    S = k.shape[1]
    d = D // heads
    qh = q.reshape(B, T, heads, d).transpose(0, 2, 1, 3)
    kh = k.reshape(B, S, heads, d).transpose(0, 2, 1, 3)
    vh = v.reshape(B, S, heads, v.shape[-1] // heads).transpose(0, 2, 1, 3)
    scores = (qh @ kh.transpose(0, 1, 3, 2)) / np.sqrt(d).astype(q.dtype)
    if causal:
        scores = np.where(np.tril(np.ones((T, S), dtype=bool)), scores, -np.inf)
    w = _softmax(scores)
    return (w @ vh).transpose(0, 2, 1, 3).reshape(B, T, v.shape[-1])
'''

TABLE = {
    **COMMON,
    Op.TANH: lambda n, a, t: f"np.tanh({a[0]})",
    Op.SIGMOID: lambda n, a, t: f"_sigmoid({a[0]})",
    Op.RELU: lambda n, a, t: f"np.maximum({a[0]}, 0)",
    Op.EXP: lambda n, a, t: f"np.exp({a[0]})",
    Op.LOG: lambda n, a, t: f"np.log({a[0]})",
    Op.CONCAT: lambda n, a, t: f"np.concatenate([{', '.join(a)}], axis={n.get('axis', -1)})",
}

EMITTER = Emitter(
    name="numpy",
    imports="import numpy as np",
    helpers=HELPERS,
    table=TABLE,
    stack="np.stack({items}, 1)",
    steps="{v}",
    to_time_major="{v}.swapaxes(0, 1)",
    to_batch_first="{v}.swapaxes(0, 1)",
    grad_helpers=GRAD_HELPERS,
)

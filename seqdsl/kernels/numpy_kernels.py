"""NumPy kernels: the helpers generated NumPy modules call (and the reference interpreter).

In:  NumPy arrays, batch-first as in docs/api.md.
Out: forward kernels (`_softmax`, `_layernorm`, `_positions`, `_attention`, ...) and the
     gradient kernels of `value_and_grad` (`_layernorm_bwd`, `_attention_bwd`, ...).

Generated modules copy the kernels they call (seqdsl/kernels/__init__.py), so each kernel
reads only numpy (`np`), other kernels and `DTYPE`, which a generated module defines for
itself (the compile dtype) and which here is float64. tests/test_kernels.py checks each
against torch.
"""

from __future__ import annotations

import numpy as np

DTYPE = "float64"  # a generated module sets its own

def _full(shape, value, like):
    return np.full(shape, value, dtype=DTYPE)


def _sigmoid(x, out=None):
    out = np.multiply(x, 0.5, out=out)
    np.tanh(out, out=out)
    out *= 0.5
    out += 0.5
    return out


def _sigtanh(x, k, out=None):
    """sigmoid on columns [0, k), tanh on [k, n): one tanh call (σ(a) = ½·tanh(a/2) + ½)."""
    if out is None:
        out = x.copy()
    elif out is not x:
        out[...] = x
    s = out[..., :k]
    s *= 0.5
    np.tanh(out, out=out)
    s *= 0.5
    s += 0.5
    return out


def _mm(x, W):
    """x @ W.T over every leading axis as one GEMM (numpy would run one per leading index)."""
    return (x.reshape(-1, x.shape[-1]) @ W.T).reshape(x.shape[:-1] + (W.shape[0],))


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


def _sigtanh_bwd(g, y, k):
    d = 1 - y * y
    d[..., :k] = y[..., :k] * (1 - y[..., :k])
    return g * d


def _add_opt(a, b):
    return b if a is None else a if b is None else a + b


def _sum_to(g, shape):
    g = np.asarray(g)
    while g.ndim > len(shape):
        g = g.sum(0)
    return g


def _put_last(g, shape):
    out = np.zeros(shape, dtype=g.dtype)
    out[:, -1] = g
    return out


def _embed_bwd(g, tokens, rows):
    out = np.zeros((rows, g.shape[-1]), dtype=g.dtype)
    np.add.at(out, tokens.reshape(-1), g.reshape(-1, g.shape[-1]))
    return out


def _layernorm_bwd(g, x, gamma, eps=1e-5):
    mu = x.mean(-1, keepdims=True)
    rstd = 1.0 / np.sqrt(((x - mu) ** 2).mean(-1, keepdims=True) + eps)
    xhat = (x - mu) * rstd
    gx = g * gamma
    dx = rstd * (gx - gx.mean(-1, keepdims=True) - xhat * (gx * xhat).mean(-1, keepdims=True))
    D = x.shape[-1]
    return dx, (g * xhat).reshape(-1, D).sum(0), g.reshape(-1, D).sum(0)


def _attention_bwd(g, q, k, v, heads, causal):
    B, T, D = q.shape
    S = k.shape[1]
    d, dv = D // heads, v.shape[-1] // heads
    qh = q.reshape(B, T, heads, d).transpose(0, 2, 1, 3)
    kh = k.reshape(B, S, heads, d).transpose(0, 2, 1, 3)
    vh = v.reshape(B, S, heads, dv).transpose(0, 2, 1, 3)
    scale = 1.0 / np.sqrt(d)
    scores = (qh @ kh.transpose(0, 1, 3, 2)) * scale
    if causal:
        scores = np.where(np.tril(np.ones((T, S), dtype=bool)), scores, -np.inf)
    w = _softmax(scores)
    gh = g.reshape(B, T, heads, dv).transpose(0, 2, 1, 3)
    gv = w.transpose(0, 1, 3, 2) @ gh
    gw = gh @ vh.transpose(0, 1, 3, 2)
    gs = w * (gw - (gw * w).sum(-1, keepdims=True)) * scale
    gq = gs @ kh
    gk = gs.transpose(0, 1, 3, 2) @ qh
    merge = lambda a, n: a.transpose(0, 2, 1, 3).reshape(B, n, -1)
    return merge(gq, T), merge(gk, S), merge(gv, S)

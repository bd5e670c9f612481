"""NumPy kernels: the helpers generated NumPy modules call (and the reference interpreter).

In:  NumPy arrays, batch-first as in docs/api.md.
Out: forward kernels (`_softmax`, `_layernorm`, `_positions`, `_attention`, `_masked_attention`, `_erf`,
     `_gelu`, `_num`, ...) and the gradient kernels of `value_and_grad` (`_layernorm_bwd`,
     `_attention_bwd`, `_masked_attention_bwd`, `_gelu_bwd`, ...).

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


def _lstm_cell(x, h, c, w_ih, w_hh, b_ih=None, b_hh=None):
    """One LSTM step in torch's gate order (i, f, g, o) and layout (weights [4H, in]): the new h
    and c side by side, [h, c] on the last axis (the IR's `lstm_cell`)."""
    z = x @ w_ih.T + h @ w_hh.T
    for b in (b_ih, b_hh):
        z = z if b is None else z + b
    i, f, g, o = np.split(z, 4, -1)
    c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
    return np.concatenate([_sigmoid(o) * np.tanh(c), c], -1)


def _row_runs(mask, reverse):
    """The samples of a length mask (B, T), 1 (true) on the first `length` steps of each row,
    sorted by length, longest first, and the stretches of steps over which the same samples run:
    (order, inverse, runs), `order` the permutation that sorts the rows and `inverse` the one that
    puts them back (both None when they already are sorted), and `runs` [(t0, t1, n)]: over steps
    t0..t1-1 the first n sorted rows run, in the order a loop visits them (last stretch first when
    `reverse`). Steps no sample reaches are in no stretch."""
    T = mask.shape[1]
    lens = np.count_nonzero(mask, axis=1)
    if not np.array_equal(mask != 0, np.arange(T) < lens[:, None]):
        raise ValueError("a length mask must be 1 on each row's first steps and 0 after them")
    order = inverse = None
    if (np.diff(lens) > 0).any():
        order = np.argsort(-lens, kind="stable")
        inverse = np.argsort(order)
        lens = lens[order]
    bounds = np.unique(np.concatenate([[0], lens]))
    runs = [(int(a), int(b), int(np.count_nonzero(lens >= b))) for a, b in zip(bounds[:-1], bounds[1:])]
    return order, inverse, runs[::-1] if reverse else runs


def _unsort(x, inv):
    """Rows sorted by `_row_runs` back in the caller's order (`inv`: the inverse permutation)."""
    return x if inv is None else x[inv]


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


def _shift(x, fill):
    """x one step late along the time axis (axis 1): `fill` at step 0 (y[t-1] of a prediction): a
    number, or one value per sample (the last value of the chunk before)."""
    out = np.empty_like(x)
    out[:, 0] = fill
    out[:, 1:] = x[:, :-1]
    return out


def _shift_bwd(g):
    out = np.zeros_like(g)
    out[:, :-1] = g[:, 1:]
    return out


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


def _masked_weights(q, k, v, keymask, heads, causal):
    """Attention split into heads, with a key-padding mask: (qh, kh, vh, the weights, the scale).
    A key whose `keymask` (B, S) is 0 gets weight exactly 0 (its score is -inf before the softmax,
    as is every key after the query with `causal`); no query may have every key masked."""
    B, T, D = q.shape
    S = k.shape[1]
    d = D // heads
    qh = q.reshape(B, T, heads, d).transpose(0, 2, 1, 3)
    kh = k.reshape(B, S, heads, d).transpose(0, 2, 1, 3)
    vh = v.reshape(B, S, heads, v.shape[-1] // heads).transpose(0, 2, 1, 3)
    scale = (1.0 / np.sqrt(d)).astype(q.dtype)
    keep = (keymask != 0)[:, None, None, :]
    if causal:
        keep = keep & np.tril(np.ones((T, S), dtype=bool))
    w = _softmax(np.where(keep, (qh @ kh.transpose(0, 1, 3, 2)) * scale, -np.inf))
    return qh, kh, vh, w, scale


def _masked_attention(q, k, v, keymask, heads, causal):
    """Attention (q, k, v as the unmasked kernel takes them) over only the keys whose `keymask` (B, S)
    is nonzero (a generated module copies the kernels a docstring names, so this one names none)."""
    B, T, _ = q.shape
    _, _, vh, w, _ = _masked_weights(q, k, v, keymask, heads, causal)
    return (w @ vh).transpose(0, 2, 1, 3).reshape(B, T, v.shape[-1])


def _num(v):
    """A number (a Python float in generated code) as an array of the module's dtype."""
    return np.asarray(v, dtype=DTYPE)


# erf by W. J. Cody's rational approximations, with the coefficients of Cephes' ndtr.c (S. L. Moshier,
# public domain; scipy's erf): |x| <= 1 erf = x·T(x²)/U(x²); else 1 - erfc, erfc = e^(-x²)·P(|x|)/Q(|x|)
# below 8 and e^(-x²)·R(|x|)/S(|x|) above. Within 2e-16 of math.erf (tests/test_kernels.py)
_ERF_T = (9.60497373987051638749e0, 9.00260197203842689217e1, 2.23200534594684319226e3,
          7.00332514112805075473e3, 5.55923013010394962768e4)
_ERF_U = (1.0, 3.35617141647503099647e1, 5.21357949780152679795e2, 4.59432382970980127987e3,
          2.26290000613890934246e4, 4.92673942608635921086e4)
_ERFC_P = (2.46196981473530512524e-10, 5.64189564831068821977e-1, 7.46321056442269912687e0,
           4.86371970985681366614e1, 1.96520832956077098242e2, 5.26445194995477358631e2,
           9.34528527171957607540e2, 1.02755188689515710272e3, 5.57535335369399327526e2)
_ERFC_Q = (1.0, 1.32281951154744992508e1, 8.67072140885989742329e1, 3.54937778887819891062e2,
           9.75708501743205489753e2, 1.82390916687909736289e3, 2.24633760818710981792e3,
           1.65666309194161350182e3, 5.57535340817727675546e2)
_ERFC_R = (5.64189583547755073984e-1, 1.27536670759978104416e0, 5.01905042251180477414e0,
           6.16021097993053585195e0, 7.40974269950448939160e0, 2.97886665372100240670e0)
_ERFC_S = (1.0, 2.26052863220117276590e0, 9.39603524938001434673e0, 1.20489539808096656605e1,
           1.70814450747565897222e1, 9.60896809063285878198e0, 3.36907645100081516050e0)


def _poly(x, coefs):
    out = x * 0 + coefs[0]
    for c in coefs[1:]:
        out = out * x + c
    return out


def _erf(x):
    """The error function, elementwise, in x's dtype."""
    x = np.asarray(x)
    s = np.clip(x, -1, 1)  # each branch is evaluated where it is used only, so none overflows
    z = s * s
    small = s * _poly(z, _ERF_T) / _poly(z, _ERF_U)
    a = np.clip(np.abs(x), 1, 30)  # erf(30) is 1 to every digit
    ratio = np.where(a < 8, _poly(a, _ERFC_P) / _poly(a, _ERFC_Q), _poly(a, _ERFC_R) / _poly(a, _ERFC_S))
    return np.where(np.abs(x) <= 1, small, np.sign(x) * (1 - np.exp(-a * a) * ratio))


def _gelu(x):
    """x·Φ(x), the exact form (torch.nn.functional.gelu's default)."""
    return x * 0.5 * (1 + _erf(x * 0.7071067811865476))


def _gelu_bwd(g, x):
    cdf = 0.5 * (1 + _erf(x * 0.7071067811865476))
    c = np.clip(x, -40, 40)  # the density is 0 beyond (and x·x would overflow)
    pdf = np.exp(-0.5 * c * c) * 0.3989422804014327  # 1/sqrt(2π)
    return g * (cdf + x * pdf)


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


def _masked_attention_bwd(g, q, k, v, keymask, heads, causal):
    """The gradients (q, k, v) of masked attention for its output's gradient `g`; the mask has none.
    A masked key's weight is exactly 0, so its rows of the k and v gradients are exactly 0."""
    B, T, _ = q.shape
    S = k.shape[1]
    qh, kh, vh, w, scale = _masked_weights(q, k, v, keymask, heads, causal)
    gh = g.reshape(B, T, heads, vh.shape[-1]).transpose(0, 2, 1, 3)
    gv = w.transpose(0, 1, 3, 2) @ gh
    gw = gh @ vh.transpose(0, 1, 3, 2)
    gs = w * (gw - (gw * w).sum(-1, keepdims=True)) * scale
    merge = lambda a, n: a.transpose(0, 2, 1, 3).reshape(B, n, -1)
    return merge(gs @ kh, T), merge(gs.transpose(0, 1, 3, 2) @ qh, S), merge(gv, S)

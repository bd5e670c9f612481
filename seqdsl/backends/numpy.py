"""The NumPy backend: the op → emitter table and helpers for generated NumPy code.

In:  nothing (tables only); used by `seqdsl.backends.codegen`.
Out: `EMITTER`, an `Emitter` whose generated modules import only numpy.
"""

from __future__ import annotations

from ..ops import Op
from ..passes.halve import sigmoid_via_tanh
from .codegen import COMMON, Emitter
from .numpy_grad import GRAD_HELPERS

HELPERS = '''
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
'''

def _matmul(node, args, types):
    from .codegen import matmul

    (a, b), (ta, tb) = args, types
    if not ta.batched and tb.batched and ta.rank == 2 and not a.endswith("__T"):
        return f"_mm({b}, {a})"
    return matmul(node, args, types)


TABLE = {
    **COMMON,
    Op.MATMUL: _matmul,
    Op.TANH: lambda n, a, t: f"np.tanh({a[0]})",
    Op.SIGMOID: lambda n, a, t: f"_sigmoid({a[0]})",
    Op.SIGTANH: lambda n, a, t: f"_sigtanh({a[0]}, {n['split'].value})",
    Op.RELU: lambda n, a, t: f"np.maximum({a[0]}, 0)",
    Op.EXP: lambda n, a, t: f"np.exp({a[0]})",
    Op.LOG: lambda n, a, t: f"np.log({a[0]})",
    Op.CONCAT: lambda n, a, t: f"np.concatenate([{', '.join(a)}], axis={n.get('axis', -1)})",
}

UFUNCS = {Op.ADD: "np.add", Op.SUB: "np.subtract", Op.MUL: "np.multiply", Op.DIV: "np.divide",
          Op.NEG: "np.negative", Op.TANH: "np.tanh", Op.EXP: "np.exp"}


def _into(node, args, types, out):
    """The node's result written into the array `out` (an operand, a static buffer, a state)."""
    from .codegen import align, transposed

    op = node["op"]
    # NOTE: `out` is passed positionally where numpy allows it: keyword arguments parse measurably slower
    if op == Op.MATMUL:
        return f"np.matmul({args[1]}, {transposed(args[0])}, {out})"
    a = [align(x, t, node["type"]) if x != out else x for x, t in zip(args, types)]
    if op in UFUNCS:
        return f"{UFUNCS[op]}({', '.join(a)}, {out})"
    if op == Op.RELU:  # np.maximum takes `out` by keyword only (positional is deprecated)
        return f"np.maximum({a[0]}, 0, out={out})"
    if op == Op.SIGMOID:
        return f"_sigmoid({a[0]}, out={out})"
    return f"_sigtanh({a[0]}, {node['split'].value}, out={out})"


INTO = {op: _into for op in (*UFUNCS, Op.RELU, Op.SIGMOID, Op.SIGTANH, Op.MATMUL)}

EMITTER = Emitter(
    name="numpy",
    imports="import numpy as np",
    helpers=HELPERS,
    table=TABLE,
    stack="np.stack({items}, 1)",
    steps="{v}",
    to_time_major="{v}.swapaxes(0, 1)",
    to_batch_first="{v}.swapaxes(0, 1)",
    every_step="np.broadcast_to({v}[:, None], (B, T) + {v}.shape[1:]).copy()",
    grad_helpers=GRAD_HELPERS,
    into=INTO,
    passes=(sigmoid_via_tanh,),
    empty="np.empty({shape}, dtype=DTYPE__)",
    pre_transpose="np.ascontiguousarray({v}.T)",
)

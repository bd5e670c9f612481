"""The NumPy backend: the op → emitter table and helpers for generated NumPy code.

In:  nothing (tables only); used by `seqdsl.backends.codegen`.
Out: `EMITTER`, an `Emitter` whose generated modules import only numpy.
"""

from __future__ import annotations

from ..kernels import Kernels
from ..ops import Op
from ..passes.sigmoid_via_tanh import sigmoid_via_tanh
from .codegen import COMMON, Emitter
from .layout import align


def _matmul(node, args, types):
    from .codegen import matmul

    (a, b), (ta, tb) = args, types
    if not ta.batched and tb.batched and ta.rank == 2 and not a.endswith("__T"):
        return f"_mm({b}, {a})"
    return matmul(node, args, types)


def _num(v: str, t) -> str:
    """Operand `v` of type `t`; a shared scalar (a Python number in generated code, which numpy would
    make a float64) as an array of the module's dtype."""
    return f"_num({v})" if not t.batched and t.rank == 0 else v


def _call(fn: str, extra: str = ""):
    """`fn(x{extra})` for a one-operand op; `extra` is formatted with the node's attributes."""
    return lambda n, a, t: f"{fn}({_num(a[0], t[0])}{extra.format(**n)})"


def _binary(fn: str):
    """`fn(a, b)` for an elementwise op of two operands, broadcast like `+`."""
    def emit(n, a, t):
        x, y = (align(_num(v, tv), tv, n["type"]) for v, tv in zip(a, t))
        return f"{fn}({x}, {y})"
    return emit


def _select(n, a, t) -> str:
    """`np.where(m, a, b)` (a nonzero m is true: the runtime passes its masks as booleans), each
    operand aligned to the result (a per-sample mask (B,) against (B, H) is `m[..., None]`)."""
    m, x, y = (align(_num(v, tv), tv, n["type"]) for v, tv in zip(a, t))
    return f"np.where({m}, {x}, {y})"


def _sigmoid(n, a, t) -> str:
    if t[0].rank or t[0].batched:
        return f"_sigmoid({a[0]})"
    return f"_sigmoid({_num(a[0], t[0])}[None])[0]"  # it writes in place: a number into an array of one


TABLE = {
    **COMMON,
    Op.MATMUL: _matmul,
    Op.TANH: _call("np.tanh"),
    Op.SIGMOID: _sigmoid,
    Op.SIGTANH: lambda n, a, t: f"_sigtanh({a[0]}, {n['split'].value})",
    Op.RELU: _call("np.maximum", ", 0"),
    Op.EXP: _call("np.exp"),
    Op.LOG: _call("np.log"),
    Op.ABS: _call("np.abs"),
    Op.SQRT: _call("np.sqrt"),
    Op.GELU: _call("_gelu"),
    Op.SOFTPLUS: _call("np.logaddexp", ", 0.0"),
    Op.POW: _call("np.power", ", {k!r}"),
    Op.CLIP: _call("np.clip", ", {lo!r}, {hi!r}"),
    Op.MINIMUM: _binary("np.minimum"),
    Op.MAXIMUM: _binary("np.maximum"),
    Op.SELECT: _select,
    Op.MEAN: lambda n, a, t: f"{a[0]}.mean(-1)",
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
    kernels=Kernels("numpy_kernels.py"),
    table=TABLE,
    stack="np.stack({items}, 1)",
    steps="{v}",
    to_time_major="{v}.swapaxes(0, 1)",
    to_batch_first="{v}.swapaxes(0, 1)",
    every_step="np.broadcast_to({v}[:, None], (B, T) + {v}.shape[1:]).copy()",
    as_array="np.asarray({v}, dtype=DTYPE__)",
    grad=True,
    into=INTO,
    passes=(sigmoid_via_tanh,),
    empty="np.empty({shape}, dtype=DTYPE__)",
    pre_transpose="np.ascontiguousarray({v}.T)",
)

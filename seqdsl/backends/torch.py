"""The PyTorch backend: the op → emitter table and helpers for generated torch code.

In:  nothing (tables only); used by `seqdsl.backends.codegen`.
Out: `EMITTER`, an `Emitter` whose generated modules import only torch. Per-step reads
     of hoisted values use `unbind(0)` (indexing `xp[t]` makes backward O(T²)).
     Attention lowers onto F.scaled_dot_product_attention.
"""

from __future__ import annotations

from ..kernels import Kernels
from ..ops import Op
from ..passes.fuse_lstm_step import fuse_lstm_step
from ..passes.fuse_multiply_add import fuse_multiply_add
from .codegen import COMMON, Emitter, transposed
from .layout import align
from .torch_fused import fused_cell


def _num(v: str, t) -> str:
    """Operand `v` of type `t`; a shared scalar (a Python number in generated code: `tanh(0.5)`,
    `sqrt(H)`) as a tensor, which torch's functions need."""
    return f"_num({v})" if not t.batched and t.rank == 0 else v


def _call(fn: str, extra: str = ""):
    """`fn(x{extra})` for a one-operand op; `extra` is formatted with the node's attributes."""
    return lambda n, a, t: f"{fn}({_num(a[0], t[0])}{extra.format(**n)})"


def _binary(fn: str):
    """`fn(a, b)` for an elementwise op of two tensors, broadcast like `+`."""
    def emit(n, a, t):
        x, y = (align(_num(v, tv), tv, n["type"]) for v, tv in zip(a, t))
        return f"{fn}({x}, {y})"
    return emit


def _select(n, a, t) -> str:
    """`torch.where(m.bool(), a, b)` (free for the boolean masks the runtime passes; the IR's select
    takes any 0/1 mask), each operand aligned to the result (a per-sample mask (B,) against (B, H)
    is `m[..., None]`); a number stays a Python number, which torch.where takes as it is."""
    m = align(a[0], t[0], n["type"])
    x, y = (v if not tv.batched and tv.rank == 0 else align(v, tv, n["type"]) for v, tv in zip(a[1:], t[1:]))
    return f"torch.where({m}.bool(), {x}, {y})"


def _addmm(a, t) -> str:
    """x + W @ h: torch.addmm; with a parameter vector x (a bias), F.linear, which takes h of any
    rank (a step's (B, H), a sequence's (B, T, H), time-major (T, B, H)); a weight the step holds
    transposed (`W__T`) goes to addmm, which broadcasts the bias."""
    if t[0].batched:
        return f"torch.addmm({a[0]}, {a[2]}, {transposed(a[1])})"
    if a[1].endswith("__T"):
        return f"F.linear({a[2]}, {a[1]}.T, {a[0]})" if t[2].seq else f"torch.addmm({a[0]}, {a[2]}, {a[1]})"
    return f"F.linear({a[2]}, {a[1]}, {a[0]})"


def _lstm_cell(n, a, t) -> str:
    """u, h[t-1], c[t-1], W_u, W_h[, b[, b2]] → (h, c): torch's LSTM step kernel, its two results
    the two halves of the IR's value (`Emitter.tuples`)."""
    biases = list(a[5:]) + ["None"] * (2 - len(a[5:]))
    return f"torch._VF.lstm_cell({a[0]}, ({a[1]}, {a[2]}), {a[3]}, {a[4]}, {biases[0]}, {biases[1]})"


TABLE = {
    **COMMON,
    Op.ADDCMUL: lambda n, a, t: f"torch.addcmul({a[0]}, {a[1]}, {a[2]})",
    Op.ADDMM: lambda n, a, t: _addmm(a, t),
    Op.TANH: _call("torch.tanh"),
    Op.SIGMOID: _call("torch.sigmoid"),
    Op.SIGTANH: lambda n, a, t: f"_sigtanh({a[0]}, {n['split'].value})",
    Op.RELU: _call("torch.relu"),
    Op.EXP: _call("torch.exp"),
    Op.LOG: _call("torch.log"),
    Op.ABS: _call("torch.abs"),
    Op.SQRT: _call("torch.sqrt"),
    Op.GELU: _call("F.gelu"),
    Op.SOFTPLUS: _call("_softplus"),
    Op.POW: _call("torch.pow", ", {k!r}"),
    Op.CLIP: _call("torch.clamp", ", {lo!r}, {hi!r}"),
    Op.MINIMUM: _binary("torch.minimum"),
    Op.MAXIMUM: _binary("torch.maximum"),
    Op.SELECT: _select,
    Op.MEAN: lambda n, a, t: f"{a[0]}.mean(-1)",
    # (where something other than its two halves reads it; else `tuples` below gives the halves)
    Op.LSTM_CELL: lambda n, a, t: f"torch.cat({_lstm_cell(n, a, t)}, -1)",
    # weights (B, S) and values (B, S, H): one batched matmul, (B, 1, S) @ (B, S, H)
    Op.WSUM: lambda n, a, t: f"torch.bmm({a[0]}.unsqueeze(1), {a[1]}).squeeze(1)",
    Op.SOFTMAX: lambda n, a, t: f"torch.softmax({a[0]}, -1)",
    Op.CONCAT: lambda n, a, t: f"torch.cat([{', '.join(a)}], dim={n.get('axis', -1)})",
    # torch.embedding (what F.embedding calls, without its Python wrapper), not table[tokens]: its
    # backward is a dense scatter-add, where indexing's is a slow accumulating index_put
    Op.EMBED: lambda n, a, t: f"torch.embedding({a[1]}, {a[0]})",
}

EMITTER = Emitter(
    name="torch",
    imports="import torch\nimport torch.nn.functional as F",
    kernels=Kernels("torch_kernels.py"),
    always=("_CTX",),
    table=TABLE,
    stack="_stack({items})",
    steps="{v}.unbind(0)",
    to_time_major="{v}.transpose(0, 1)",
    to_batch_first="{v}.transpose(0, 1)",
    every_step="{v}[:, None].expand((B, T) + tuple({v}.shape[1:])).clone()",
    as_array="torch.as_tensor({v}, dtype=_CTX['dtype'], device=_CTX['device'])",
    fused_cell=fused_cell,
    passes=(fuse_multiply_add,),
    # the tensor method itself: Tensor.split is a Python wrapper that costs a few µs a call, which
    # matters in generation's one-step calls
    split="{v}.split_with_sizes({sizes}, -1)",
    pre_transpose="{v}.T",
    step_values=True,
    step_passes=(fuse_lstm_step,),
    tuples={Op.LSTM_CELL: _lstm_cell},
    zeros="torch.zeros({shape}, dtype=_CTX['dtype'], device=_CTX['device'])",
    copy="{v}.clone()",
    rows_twin=True,
)

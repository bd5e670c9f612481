"""The op vocabulary of the IR: one enum, and one table of shape rules.

In:  an op, its node attributes and the types of its inputs (in port order).
Out: `Op` (every op the IR may hold, documented in docs/ir.md), `OPS` (op → `OpInfo`:
     arity, whether it is elementwise, and its shape rule) and `infer(op, attrs, types,
     span)`, the result type or a `SpecError` naming both shapes.

Semantics per sample (arrays carry a leading batch axis, see seqdsl.types):
  matmul  A @ x  with A shared [M, N] and x [.., N] → [.., M]; A shared [N] → []
          both batched: [N]·[N] → [], seq[N]·[N] → seq[] (one score per position)
  softmax normalises over the last axis (the seq axis of a `seq[]` value)
  sum     reduces the seq axis: seq[..] → [..]
  mean    averages the feature axis of a vector: [H] → [], seq[H] → seq[], shared[H] → shared[]
  last    the last position of a seq: seq[..] → [..]
  min/max elementwise, broadcast like `+`; abs, sqrt, gelu (exact, erf), softplus (log(1 + e^x),
          exactly), pow (attrs: k, a number), clip (attrs: lo, hi, numbers) elementwise
  select  (mask, a, b) → where(mask != 0, a, b); the mask has no feature axis ([], seq[], shared[])
          and broadcasts like a `[]` operand of `+`; a and b broadcast like `+`; the result is
          the broadcast of all three (a batched or seq mask makes it so)
  attention (q, k, v) or (q, k, v, keymask): keymask seq[] over the keys (0: a padding key,
          weight exactly 0)
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Callable

from .errors import Span, SpecError
from .sizes import Size
from .types import VType


class Op(str, enum.Enum):
    # leaves
    INPUT = "input"          # a per-step input (cells) or a model/block input; attrs: kind
    MEMORY = "memory"        # a cell's attended sequence (seq[..]), fixed over the steps
    PARAM = "param"          # a trained parameter; attrs: init
    CONST = "const"          # a number; attrs: value
    POSITIONS = "positions"  # sinusoidal position codes, shared seq[D]
    # elementwise
    ADD = "add"
    SUB = "sub"
    MUL = "mul"
    DIV = "div"
    NEG = "neg"
    TANH = "tanh"
    SIGMOID = "sigmoid"
    RELU = "relu"
    EXP = "exp"
    LOG = "log"
    ABS = "abs"
    SQRT = "sqrt"
    GELU = "gelu"            # x·Φ(x), the exact (erf) form, as torch.nn.functional.gelu
    SOFTPLUS = "softplus"    # log(1 + exp(x)), exactly (torch's F.softplus switches to x above 20)
    POW = "pow"              # x ** k; attrs: k (a number)
    CLIP = "clip"            # attrs: lo, hi (numbers, lo <= hi)
    MINIMUM = "minimum"      # min(a, b), elementwise
    MAXIMUM = "maximum"      # max(a, b), elementwise
    SELECT = "select"        # inputs: mask, a, b; where(mask != 0, a, b) (made by the length-masking pass)
    DROPOUT = "dropout"      # input: x; attrs: p, variational. x at inference; x * keep in training (passes/dropout.py)
    IDENTITY = "identity"    # a copy: a state or output equal to another value
    SIGTANH = "sigtanh"      # sigmoid on the first `split` columns, tanh on the rest (made by lift_slices)
    # structure
    MATMUL = "matmul"
    ADDCMUL = "addcmul"      # x + a * b (made by the torch pipeline's fuse_multiply_add)
    ADDMM = "addmm"          # x + W @ h, W shared (made by the torch pipeline's fuse_multiply_add)
    WSUM = "wsum"            # sum(a * m): weights a seq[] times m seq[H], summed over the seq axis (same pass)
    LSTM_CELL = "lstm_cell"  # u, h[t-1], c[t-1], W_u, W_h[, b[, b2]] → [h, c] (made by the torch step's fuse_lstm_step)
    CONCAT = "concat"        # along the last axis (attrs: axis=0 stacks shared matrices by rows)
    SLICE = "slice"          # attrs: start, stop (last axis)
    SOFTMAX = "softmax"
    SUM = "sum"
    MEAN = "mean"            # over the feature (last) axis of a vector
    LAST = "last"
    LAYERNORM = "layernorm"  # inputs: x, gamma, beta
    EMBED = "embed"          # inputs: tokens, table
    ONEHOT = "onehot"        # attrs: size
    ATTENTION = "attention"  # inputs: q, k, v[, keymask]; attrs: heads, causal
    SHIFT = "shift"          # x[, first]: out[:, 0] = first or fill, out[:, t] = x[:, t-1] (y[t-1] of a prediction)
    # models
    CALL = "call"            # run a cell over a sequence / apply a block; attrs: callee, ...
    GET = "get"              # a field of a call; attrs: field
    OUTPUT = "output"        # a definition's output; attrs: name


ELEMENTWISE_BINARY = {Op.ADD: "+", Op.SUB: "-", Op.MUL: "*", Op.DIV: "/"}
# the functions of the language that are one op over their arguments (arity: OPS[op].arity)
FUNCTIONS = {"tanh": Op.TANH, "sigmoid": Op.SIGMOID, "relu": Op.RELU, "exp": Op.EXP, "log": Op.LOG,
             "softmax": Op.SOFTMAX, "sum": Op.SUM, "abs": Op.ABS, "sqrt": Op.SQRT, "gelu": Op.GELU,
             "softplus": Op.SOFTPLUS, "min": Op.MINIMUM, "max": Op.MAXIMUM, "mean": Op.MEAN}
_WHAT = {Op.ADD: "addition", Op.SUB: "subtraction", Op.MUL: "multiplication", Op.DIV: "division",
         Op.MINIMUM: "min", Op.MAXIMUM: "max"}


def _err(msg: str, span: Span, hint: str | None = None):
    raise SpecError(msg, span, hint)


def broadcast(a: VType, b: VType, span: Span, what: str) -> VType:
    """Elementwise result of `a` and `b`: equal dims, or one of them has none."""
    if a.dtype == "int" or b.dtype == "int":
        _err(f"cannot {what} token ids ({a if a.dtype == 'int' else b}); embed them first", span,
             "use embed(tokens, V, E) or onehot(tokens, V)")
    if a.dims and b.dims and a.dims != b.dims:
        _err(f"shape mismatch in {what}: {a} vs {b}", span)
    if not a.batched and a.seq and b.batched and not b.seq:
        _err(f"shape mismatch in {what}: {a} vs {b}", span)
    if not b.batched and b.seq and a.batched and not a.seq:
        _err(f"shape mismatch in {what}: {a} vs {b}", span)
    dims = a.dims or b.dims
    return VType(dims, a.seq or b.seq, "float", a.batched or b.batched)


def _elementwise(op):
    def rule(attrs, ts, span):
        if len(ts) == 1:
            if ts[0].dtype == "int":
                _err(f"{op.value} needs numbers, got token ids {ts[0]}", span, "use embed() or onehot() first")
            return ts[0]
        return broadcast(ts[0], ts[1], span, _WHAT[op])
    return rule


def _dropout(attrs, ts, span):
    (x,) = ts
    if x.dtype == "int":
        _err("dropout needs numbers, got token ids", span, "embed(tokens, V, E) first, then dropout")
    return x


def _select(attrs, ts, span):
    m, a, b = ts
    if m.dims or m.dtype == "int":
        _err(f"select needs a mask of numbers with no feature axis ([], seq[] or shared[]), got {m}", span)
    ab = broadcast(a, b, span, "select")
    return broadcast(m, ab, span, "select")


def _matmul(attrs, ts, span):
    a, x = ts
    if a.dtype == "int" or x.dtype == "int":
        _err("cannot multiply token ids; embed them first", span)
    if not a.batched and x.batched:
        if a.seq or a.rank not in (1, 2):
            _err(f"matmul needs a matrix or vector on the left, got {a}", span)
        if x.rank != 1:
            _err(f"matmul: the right side must be a vector or seq of vectors, got {x}", span)
        if a.dims[-1] != x.dims[-1]:
            _err(f"shape mismatch in matmul: {a} @ {x} (inner sizes {a.dims[-1]} and {x.dims[-1]})", span)
        return VType(a.dims[:-1], x.seq, "float", True)
    if a.batched and not x.batched:
        if x.seq or x.rank not in (1, 2) or a.rank != 1:
            _err(f"matmul cannot combine {a} and {x}", span)
        if a.dims[-1] != x.dims[0]:
            _err(f"shape mismatch in matmul: {a} @ {x} (inner sizes {a.dims[-1]} and {x.dims[0]})", span)
        return VType(x.dims[1:], a.seq, "float", True)
    if a.batched and x.batched:
        if a.rank != 1 or x.rank != 1:
            _err(f"matmul of two per-sample values needs two vectors, got {a} and {x}", span)
        if a.seq and x.seq:
            _err(f"matmul of two sequences ({a} @ {x}) is not supported", span,
                 "score one query against a sequence: seq[H] @ [H]; or use attention() in a block")
        if a.dims[0] != x.dims[0]:
            _err(f"shape mismatch in matmul: {a} @ {x}", span)
        return VType((), a.seq or x.seq, "float", True)
    if a.rank == 2 and x.rank in (1, 2) and a.dims[-1] == x.dims[0]:
        return VType(a.dims[:1] + x.dims[1:], False, "float", False)
    _err(f"shape mismatch in matmul: {a} @ {x}", span)


def _concat(attrs, ts, span):
    if len(ts) < 2:
        _err("concat needs at least two values", span)
    first = ts[0]
    if attrs.get("axis", -1) == 0:  # stacking shared matrices row-wise (made by the fuse pass)
        if any(t.batched or t.rank != 2 or t.dims[1] != first.dims[1] for t in ts):
            _err("row-wise concat needs shared matrices with equal columns", span)
        rows = Size(())
        for t in ts:
            rows = rows + t.dims[0]
        return VType((rows, first.dims[1]), False, "float", False)
    total = Size(())
    for t in ts:
        if t.dtype == "int" or t.rank != 1:
            _err(f"concat joins vectors along their last axis; got {t}", span)
        if t.seq != first.seq or t.batched != first.batched:
            _err(f"concat of mismatched kinds: {first} and {t}", span)
        total = total + t.dims[0]
    return VType((total,), first.seq, "float", first.batched)


def _slice(attrs, ts, span):
    (x,) = ts
    if x.rank != 1:
        _err(f"split needs a vector, got {x}", span)
    return x.with_(dims=(attrs["stop"] - attrs["start"],))


def _softmax(attrs, ts, span):
    (x,) = ts
    if x.dtype == "int":
        _err("softmax needs numbers, got token ids", span)
    if not x.dims and not x.seq:
        _err(f"softmax of {x} has nothing to normalise over", span)
    return x


def _sum(attrs, ts, span):
    (x,) = ts
    if not x.seq:
        _err(f"sum reduces a sequence axis; {x} has none", span, "sum(a * m) sums over the attended memory m")
    return x.with_(seq=False)


def _wsum(attrs, ts, span):
    a, m = ts
    if a.dims or not a.seq or not m.seq or m.rank != 1:
        _err(f"wsum weighs a seq[H] by a seq[]: got {a} and {m}", span)
    return _sum(attrs, [broadcast(a, m, span, "multiplication")], span)


def _lstm_cell(attrs, ts, span):
    """(u [U], h [H], c [H], W_u [4H, U], W_h [4H, H], biases [4H]...) → [2H]: torch's LSTM step."""
    u, h, c, wu, wh, *bs = ts
    H = h.dims[-1] if h.dims else None
    ok = (h.rank == 1 and c.dims == h.dims and u.rank == 1 and wu.rank == 2 and wh.rank == 2 and len(bs) <= 2
          and not (wu.batched or wh.batched or any(b.batched for b in bs)) and wh.dims[1] == H
          and wu.dims[1] == u.dims[0] and wu.dims[0] == wh.dims[0] and all(b.dims == wh.dims[:1] for b in bs))
    if not ok:
        _err(f"lstm_cell: operands of unexpected shapes {[str(t) for t in ts]}", span)
    return VType((H + H,), False, "float", True)


def _mean(attrs, ts, span):
    (x,) = ts
    if x.dtype == "int":
        _err("mean needs numbers, got token ids", span, "use embed() or onehot() first")
    if x.rank != 1:
        _err(f"mean averages the features of a vector; {x} has {'none' if not x.rank else 'two axes'}", span,
             "sum(a * m) sums over the sequence of a memory" if x.seq and not x.rank else None)
    return x.with_(dims=())


def _last(attrs, ts, span):
    (x,) = ts
    if not x.seq:
        _err(f"[last] needs a sequence, got {x}", span)
    return x.with_(seq=False)


def _layernorm(attrs, ts, span):
    x, g, b = ts
    if x.rank != 1 or x.dtype == "int":
        _err(f"layernorm needs vectors, got {x}", span)
    return x


def _embed(attrs, ts, span):
    tok, table = ts
    if tok.dtype != "int":
        _err(f"embed needs token ids (seq<int>), got {tok}", span)
    return VType(table.dims[1:], tok.seq, "float", True)


def _onehot(attrs, ts, span):
    (tok,) = ts
    if tok.dtype != "int":
        _err(f"onehot needs token ids (seq<int>), got {tok}", span)
    return VType((attrs["size"],), tok.seq, "float", True)


def _attention(attrs, ts, span):
    if len(ts) not in (3, 4):
        _err(f"attention takes q, k, v and an optional key mask, got {len(ts)} inputs", span)
    q, k, v = ts[:3]
    for t in ts[:3]:
        if not t.seq or t.rank != 1 or t.dtype == "int":
            _err(f"attention needs sequences of vectors (seq[D]), got {t}", span)
    if len(ts) == 4 and (not ts[3].seq or not ts[3].batched or ts[3].dims or ts[3].dtype == "int"):
        _err(f"attention's key mask is a seq[] of 0/1 numbers over the keys, got {ts[3]}", span)
    if q.dims != k.dims:
        _err(f"shape mismatch in attention: q {q} vs k {k}", span)
    heads = attrs["heads"]
    d = q.dims[0].value
    if d is not None and heads.value is not None and d % heads.value:
        _err(f"attention: {heads.value} heads do not divide the size {d}", span)
    return v


def _shift(attrs, ts, span):
    x = ts[0]
    if not x.seq or not x.batched:
        _err(f"shift reads a sequence one step late; got {x}", span)
    if len(ts) > 2 or (len(ts) == 2 and (ts[1].seq or ts[1].dims != x.dims or ts[1].dtype != x.dtype)):
        _err(f"shift takes a sequence and, optionally, its value before the first step; got {ts}", span)
    return x


def _leaf(attrs, ts, span):
    return attrs["type"]


@dataclass(frozen=True)
class OpInfo:
    """Everything the compiler knows about an op, in one place (the passes, backends and renderer
    ask `ops_where(...)` or `OPS[op].flag`, never a set of their own)."""

    arity: int | None  # None: variadic / decided by the node
    rule: Callable     # the shape rule: (attrs, input types, span) -> result type
    kind: str          # "leaf" | "elementwise" | "reduction" | "structural" | "model"
    positionwise: bool = False    # each position of a sequence from that position alone: runs over all steps at once
    liftable: bool = False        # elementwise math that lift_slices may apply to fused columns
    inplace: bool = False         # the NumPy backend may write its result into an operand's buffer
    view: bool = False            # the generated code returns (a view of) its operand: reads nothing itself
    differentiable: bool = True   # has a vector-Jacobian product (False: gradients stop or are collected there)
    shared: bool = False          # the same value at every step (the unrolled picture draws it once)
    constant: bool = False        # fixed by the spec itself: no gradient flows into it
    fed: bool = False             # passed in by the caller (an input or an attended memory)
    drawn: str = "node"           # "node", "folded" (into its reader's label), or "hidden" in model pictures
    grad_reads: tuple = ()        # what its vector-Jacobian product reads: "in" (operands), "out" (its result)
    label: str = ""               # how the renderer draws it (`label(op, attrs)` fills in attributes)
    compiled: bool = True         # reaches the backends (False: the driver rewrites it first, as dropout)


def _info(arity, rule, kind, label, **flags) -> OpInfo:
    return OpInfo(arity, rule, kind, label=label, **flags)


_POINTWISE = dict(positionwise=True, liftable=True, inplace=True)  # + - * / and the activations
_LIFTABLE = dict(positionwise=True, liftable=True)  # elementwise math with no attributes, not written in place
_IN, _OUT = ("in",), ("out",)  # what a derivative reads: the operands, or the result

OPS: dict = {
    Op.INPUT: _info(0, _leaf, "leaf", "in", differentiable=False, fed=True),
    Op.MEMORY: _info(0, _leaf, "leaf", "memory", differentiable=False, shared=True, fed=True),
    Op.PARAM: _info(0, _leaf, "leaf", "param", differentiable=False, shared=True, drawn="folded"),
    Op.CONST: _info(0, _leaf, "leaf", "const", differentiable=False, shared=True, constant=True, drawn="folded"),
    Op.POSITIONS: _info(0, _leaf, "leaf", "positions", differentiable=False, constant=True, drawn="hidden"),
    Op.ADD: _info(2, _elementwise(Op.ADD), "elementwise", "+", **_POINTWISE),
    Op.SUB: _info(2, _elementwise(Op.SUB), "elementwise", "−", **_POINTWISE),
    Op.MUL: _info(2, _elementwise(Op.MUL), "elementwise", "×", **_POINTWISE, grad_reads=_IN),
    Op.DIV: _info(2, _elementwise(Op.DIV), "elementwise", "÷", **_POINTWISE, grad_reads=_IN),
    Op.NEG: _info(1, _elementwise(Op.NEG), "elementwise", "−", **_POINTWISE),
    Op.TANH: _info(1, _elementwise(Op.TANH), "elementwise", "tanh", **_POINTWISE, grad_reads=_OUT),
    Op.SIGMOID: _info(1, _elementwise(Op.SIGMOID), "elementwise", "σ", **_POINTWISE, grad_reads=_OUT),
    Op.RELU: _info(1, _elementwise(Op.RELU), "elementwise", "relu", **_POINTWISE, grad_reads=_IN),
    Op.EXP: _info(1, _elementwise(Op.EXP), "elementwise", "exp", **_POINTWISE, grad_reads=_OUT),
    Op.LOG: _info(1, _elementwise(Op.LOG), "elementwise", "log", positionwise=True, liftable=True, grad_reads=_IN),
    Op.ABS: _info(1, _elementwise(Op.ABS), "elementwise", "abs", **_LIFTABLE, grad_reads=_IN),
    Op.SQRT: _info(1, _elementwise(Op.SQRT), "elementwise", "√", **_LIFTABLE, grad_reads=_OUT),
    Op.GELU: _info(1, _elementwise(Op.GELU), "elementwise", "gelu", **_LIFTABLE, grad_reads=_IN),
    Op.SOFTPLUS: _info(1, _elementwise(Op.SOFTPLUS), "elementwise", "softplus", **_LIFTABLE, grad_reads=_IN),
    Op.POW: _info(1, _elementwise(Op.POW), "elementwise", "^{k:g}", positionwise=True, grad_reads=_IN),
    Op.CLIP: _info(1, _elementwise(Op.CLIP), "elementwise", "clip [{lo:g}, {hi:g}]", positionwise=True,
                   grad_reads=_IN),
    Op.MINIMUM: _info(2, _elementwise(Op.MINIMUM), "elementwise", "min", **_LIFTABLE, grad_reads=_IN),
    Op.MAXIMUM: _info(2, _elementwise(Op.MAXIMUM), "elementwise", "max", **_LIFTABLE, grad_reads=_IN),
    Op.SELECT: _info(3, _select, "elementwise", "select", positionwise=True, grad_reads=_IN),
    Op.DROPOUT: _info(1, _dropout, "elementwise", "dropout {p:g}", positionwise=True, compiled=False),
    Op.IDENTITY: _info(1, _elementwise(Op.IDENTITY), "elementwise", "=", positionwise=True, view=True),
    Op.SIGTANH: _info(1, _elementwise(Op.SIGTANH), "elementwise", "σ|tanh", inplace=True, grad_reads=_OUT),
    Op.ADDCMUL: _info(3, lambda a, ts, s: broadcast(ts[0], broadcast(ts[1], ts[2], s, "multiplication"), s,
                                                     "addition"), "elementwise", "+×"),
    Op.ADDMM: _info(3, lambda a, ts, s: broadcast(ts[0], _matmul(a, ts[1:], s), s, "addition"), "structural",
                    "+@", positionwise=True),
    Op.WSUM: _info(2, _wsum, "reduction", "Σ×", grad_reads=_IN),
    Op.LSTM_CELL: _info(None, _lstm_cell, "structural", "LSTM", grad_reads=_IN),
    Op.MATMUL: _info(2, _matmul, "structural", "@", positionwise=True, grad_reads=_IN),
    Op.CONCAT: _info(None, _concat, "structural", "concat", positionwise=True),
    Op.SLICE: _info(1, _slice, "structural", "split", positionwise=True, view=True),
    Op.SOFTMAX: _info(1, _softmax, "reduction", "softmax", grad_reads=_OUT),
    Op.SUM: _info(1, _sum, "reduction", "Σ", grad_reads=_IN),
    Op.MEAN: _info(1, _mean, "reduction", "mean", positionwise=True),
    Op.LAST: _info(1, _last, "reduction", "last", view=True, grad_reads=_IN),
    Op.LAYERNORM: _info(3, _layernorm, "reduction", "layernorm", grad_reads=_IN),
    Op.EMBED: _info(2, _embed, "structural", "embed", grad_reads=_IN),
    Op.ONEHOT: _info(1, _onehot, "structural", "onehot"),
    Op.ATTENTION: _info(None, _attention, "reduction", "attention", grad_reads=_IN),
    Op.SHIFT: _info(None, _shift, "structural", "t-1"),
    Op.CALL: _info(None, _leaf, "model", "call"),
    Op.GET: _info(1, _leaf, "model", "get"),
    Op.OUTPUT: _info(1, lambda a, ts, s: ts[0], "model", "out", differentiable=False),
}


def label(op: Op, attrs: dict | None = None) -> str:
    """How the renderer draws op `op` (`OpInfo.label`), with the node's attributes filled in:
    `clip [-1, 1]`, `^2`."""
    text = OPS[op].label
    if op == Op.DROPOUT and (attrs or {}).get("variational"):
        text += " variational"
    if "{" not in text:
        return text
    try:
        return text.format(**(attrs or {}))
    except (KeyError, TypeError, ValueError):
        return op.value


def ops_where(**flags) -> frozenset:
    """The ops whose `OpInfo` has every given field equal to the given value:
    `ops_where(positionwise=True)`, `ops_where(kind="leaf")`, `ops_where(drawn="folded")`."""
    return frozenset(op for op, info in OPS.items() if all(getattr(info, k) == v for k, v in flags.items()))


def infer(op: Op, attrs: dict, types: list, span: Span) -> VType:
    info = OPS[op]
    if info.arity is not None and len(types) != info.arity:
        raise SpecError(f"{op.value} takes {info.arity} inputs, got {len(types)}", span)
    return info.rule(attrs, types, span)

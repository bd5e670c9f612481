"""The reference interpreter: the IR's meaning, op by op, with no passes and no codegen.

In:  a `Program`, a definition name, bound sizes, parameters (spec name → array), inputs and
     optional initial states, all NumPy and batch-first (as in docs/api.md).
Out: `run(...)` → (outputs, final): what the spec means. Slow and plain on purpose: a cell is
     evaluated step by step in topological order, a model call by call. Both backends, which
     run optimised generated code, are tested against it on every spec. Softmax, layernorm,
     positions, attention and gelu are the NumPy backend's own kernels (seqdsl/kernels), which
     tests/test_kernels.py checks against torch.
"""

from __future__ import annotations

import numpy as np

from .ir import in_edges, states, topo_order
from .kernels.numpy_kernels import (
    _attention,
    _gelu,
    _layernorm,
    _lstm_cell,
    _masked_attention,
    _positions,
    _shift,
    _softmax,
)
from .ops import Op


def _align(v, t, out):
    if t.batched and not t.seq and out.seq:
        v = v[:, None]
    if t.batched and len(t.dims) < len(out.dims):
        v = v.reshape(v.shape + (1,) * (len(out.dims) - len(t.dims)))
    return v


def _matmul(a, x, ta, tx):
    if not ta.batched and tx.batched:
        return np.einsum("...n,mn->...m", x, a) if ta.rank == 2 else np.einsum("...n,n->...", x, a)
    if ta.batched and not tx.batched:
        return np.einsum("...n,nm->...m", a, x) if tx.rank == 2 else np.einsum("...n,n->...", a, x)
    if ta.batched and tx.batched:
        if ta.seq:
            return np.einsum("bsn,bn->bs", a, x)
        if tx.seq:
            return np.einsum("bn,bsn->bs", a, x)
        return np.einsum("bn,bn->b", a, x)
    return a @ x


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _eval(g, n, args, types, ctx):
    d = g.nodes[n]
    op, out = d["op"], d["type"]
    al = [_align(a, t, out) for a, t in zip(args, types)]
    table = {
        Op.ADD: lambda: al[0] + al[1], Op.SUB: lambda: al[0] - al[1], Op.MUL: lambda: al[0] * al[1],
        Op.DIV: lambda: al[0] / al[1], Op.NEG: lambda: -args[0], Op.TANH: lambda: np.tanh(args[0]),
        Op.SIGMOID: lambda: _sigmoid(args[0]), Op.RELU: lambda: np.maximum(args[0], 0),
        Op.EXP: lambda: np.exp(args[0]), Op.LOG: lambda: np.log(args[0]), Op.IDENTITY: lambda: args[0],
        Op.DROPOUT: lambda: args[0],  # the reference is inference: dropout is the identity
        Op.MATMUL: lambda: _matmul(args[0], args[1], types[0], types[1]),
        Op.CONCAT: lambda: np.concatenate(args, axis=d.get("axis", -1)),
        Op.SLICE: lambda: args[0][..., d["start"].value:d["stop"].value],
        Op.SOFTMAX: lambda: _softmax(args[0]), Op.SUM: lambda: args[0].sum(1), Op.LAST: lambda: args[0][:, -1],
        Op.WSUM: lambda: (args[0][..., None] * args[1]).sum(1),
        Op.LSTM_CELL: lambda: _lstm_cell(*args),
        Op.EMBED: lambda: args[1][args[0]], Op.ONEHOT: lambda: np.eye(d["size"].value, dtype=ctx["dtype"])[args[0]],
        Op.ATTENTION: lambda: (_masked_attention if len(args) == 4 else _attention)(*args, d["heads"].value,
                                                                                     d["causal"]),
        Op.SELECT: lambda: np.where(al[0] != 0, al[1], al[2]),
        Op.SHIFT: lambda: _shift(args[0], args[1] if len(args) == 2 else
                                 int(d["fill"]) if types[0].dtype == "int" else d["fill"]),
        Op.ABS: lambda: np.abs(args[0]), Op.SQRT: lambda: np.sqrt(args[0]), Op.GELU: lambda: _gelu(args[0]),
        Op.SOFTPLUS: lambda: np.logaddexp(args[0], 0.0), Op.POW: lambda: np.power(args[0], d["k"]),
        Op.CLIP: lambda: np.clip(args[0], d["lo"], d["hi"]), Op.MINIMUM: lambda: np.minimum(al[0], al[1]),
        Op.MAXIMUM: lambda: np.maximum(al[0], al[1]), Op.MEAN: lambda: args[0].mean(-1),
        Op.CONST: lambda: np.asarray(d["value"], dtype=ctx["dtype"]),
        Op.POSITIONS: lambda: _positions(ctx["T"], out.dims[0].value).astype(ctx["dtype"]),
    }
    if op == Op.LAYERNORM:
        return _layernorm(*args)
    if op not in table:
        raise NotImplementedError(f"the interpreter has no rule for {op.value}")
    return table[op]()


def _steps_of(name: str, xs: dict):
    """(B, T) shared by a cell's per-step inputs {name: (B, T, ...)}."""
    shapes = {k: tuple(v.shape[:2]) for k, v in xs.items()}
    if len(set(shapes.values())) != 1:
        raise ValueError(f"{name}: per-step inputs differ in batch or length: {shapes}")
    return next(iter(shapes.values()))


def run_cell(g, params: dict, xs: dict, init: dict, memory: dict, reverse: bool = False):
    """(outputs, per-step states, final states) of a cell over its inputs {name: (B, T, ...)}."""
    B, T = _steps_of(g.graph["name"], xs)
    dtype = next(iter(xs.values())).dtype
    sts = states(g)
    history = {s: [init.get(s) if init.get(s) is not None else
                   np.full((B,) + g.nodes[s]["type"].concrete_dims(), g.nodes[s]["init"], dtype=dtype)]
               for s in sts}
    outs = {g.nodes[o]["output"]: [None] * T for o in g.nodes if g.nodes[o]["op"] == Op.OUTPUT}
    seqs = {s: [None] * T for s in sts}
    order = topo_order(g)
    for i, t in enumerate(range(T - 1, -1, -1) if reverse else range(T)):
        vals: dict = {}
        for n in order:
            d = g.nodes[n]
            if d["op"] == Op.INPUT:
                vals[n] = xs[n][:, t]
            elif d["op"] == Op.MEMORY:
                vals[n] = memory[n]
            elif d["op"] == Op.PARAM:
                vals[n] = params[n]
            elif d["op"] == Op.OUTPUT:  # a value of parameters alone is the same for every sequence
                src = in_edges(g, n)[0][0]
                val = vals[src]
                outs[d["output"]][t] = val if g.nodes[src]["type"].batched else np.broadcast_to(val, (B,) + val.shape)
            else:
                args, types = [], []
                for u, _, k in in_edges(g, n):
                    hist = history.get(u)
                    args.append(vals[u] if not k else hist[max(0, len(hist) - k)] if len(hist) >= k else hist[0])
                    types.append(g.nodes[u]["type"])
                vals[n] = _eval(g, n, args, types, {"dtype": dtype, "T": T})
        for s in sts:
            history[s].append(vals[s])
            seqs[s][t] = vals[s]
        _ = i
    stack = lambda xs: np.stack(xs, 1)
    return ({k: stack(v) for k, v in outs.items()}, {s: stack(v) for s, v in seqs.items()},
            {s: history[s][-1] for s in sts})


def run(program, name: str, sizes: dict | None, params: dict, inputs: dict, state: dict | None = None):
    """What definition `name` computes: (outputs, final), as the executables return them."""
    g = program.specialize(name, sizes or {})
    kind = g.graph["kind"]
    if kind == "cell":
        xs = {n: inputs[n] for n, d in g.nodes(data=True) if d["op"] == Op.INPUT}
        mems = {n: inputs[n] for n, d in g.nodes(data=True) if d["op"] == Op.MEMORY}
        outs, _, final = run_cell(g, params, xs, dict(state or {}), mems)
        return outs, final
    return _run_straight(program, g, params, inputs, "", dict(state or {}))


def _run_straight(program, g, params, inputs, prefix, state=None):
    """A block or model; `state`: a model's run states given by the caller (`enc.h`)."""
    state = state or {}
    vals: dict = {}
    outs, final = {}, {}
    seq_inputs = [n for n, d in g.nodes(data=True) if d["op"] == Op.INPUT and d["type"].seq]
    T = inputs[seq_inputs[0]].shape[1] if seq_inputs else 0
    dtype = next((p.dtype for p in params.values()), np.float64)
    for n in topo_order(g):
        d = g.nodes[n]
        op = d["op"]
        if op == Op.INPUT:
            vals[n] = inputs[n]
        elif op == Op.PARAM:
            vals[n] = params[prefix + n]
        elif op == Op.OUTPUT:
            outs[d["output"]] = vals[in_edges(g, n)[0][0]]
        elif op == Op.CALL:
            callee = program.instance(d["callee"], d["sizes"])
            ports = {p: vals[u] for u, p, _ in in_edges(g, n)}
            pre = prefix + d["instance"] + "."
            sub = {k[len(pre):]: v for k, v in params.items() if k.startswith(pre)}
            if d["kind"] == "cell":
                xs = {m: ports[m] for m, md in callee.nodes(data=True) if md["op"] == Op.INPUT}
                sts = states(callee)
                mems = {m: ports[m] for m, md in callee.nodes(data=True) if md["op"] == Op.MEMORY}
                init = {s: state.get(f"{d['instance']}.{s}", ports.get(s)) for s in sts}
                o, seqs, fin = run_cell(callee, sub, xs, init, mems, d["reverse"])
                vals[n] = (o, seqs, fin)
                final.update({f"{d['instance']}.{s}": v for s, v in fin.items()})
            else:
                o, _ = _run_straight(program, callee, params, ports, pre)
                vals[n] = (o, {}, {})
        elif op == Op.GET:
            o, seqs, fin = vals[in_edges(g, n)[0][0]]
            field = d["field"]
            vals[n] = fin[field[6:]] if field.startswith("final.") else o[field] if field in o else seqs[field]
        else:
            args = [vals[u] for u, _, _ in in_edges(g, n)]
            types = [g.nodes[u]["type"] for u, _, _ in in_edges(g, n)]
            if op == Op.SHIFT and not prefix:  # y[t-1]: its value before the first step, and after the last
                u = in_edges(g, n)[0][0]
                final[f"{u}.last"] = vals[u][:, -1]
                if state.get(f"{u}.last") is not None:
                    args.append(np.asarray(state[f"{u}.last"]))
            vals[n] = _eval(g, n, args, types, {"dtype": dtype, "T": T})
    return outs, final

"""Codegen: a compile plan → Python source, one assignment per node.

In:  a `Program`, a compile plan (`seqdsl.driver.Plan`: the units the definition needs, each
     with its optimised IR, recognised standard cell, schedules and variable names; codegen
     runs no pass and makes no decision of its own about what runs when), and an `Emitter`
     (the backend: an op → emitter table plus a few hooks; see numpy.py and torch.py).
Out: the source of a standalone module: a header naming the spec and sizes, the
     backend's helpers, one function per cell/block/model used, `PARAMS` (name →
     shape and initializer), `INPUTS` (per-step inputs, then memories), `MEMORIES` (which
     of `INPUTS` are a cell's memories), `OUTPUTS`, `STATES` and `forward(P, inputs, state)`.

Layouts: values in blocks and models are batch-first, (B, T, ...). A cell function takes
each of its inputs as (B, T, I) (`x__in`, `mask__in`, ...: one argument per `in`, all with
the same B and T) and loops over t; nodes the hoist pass marks "time" are computed before the
loop on a time-major copy (T, B, ...), "once" nodes once per call, "step" nodes per step.
With a memory plan (NumPy inference) outputs are copied out of the step as soon as they are
computed.

Names (docs/ir.md, "Names in generated code"). In a function that holds IR values (one per
definition used, its `__grad` twin and their `backward__` closures) one rule keeps the
spec's names apart from the names the code makes for itself:

- a temporary is named after the spec values it holds and its op (`_i_f_o_g_tanh`, `_c_mul`;
  `value_names.py`); a spec value's variable is its IR node's name (`W_ii`, `f`, `c`), unless that name is
  not an identifier free of "__", or is a name the code reads (`Codegen.reserved`: `PLAIN`,
  i.e. `t`, `B`, `T`, `np`, `torch`, `F`; the helpers such as `_mm`; Python's builtins and
  keywords): then it is escaped to a fresh identifier free of "__" (`enc.W` → `enc_W`,
  `a__y` → `a_y`, `_mm` → `_mm_2`; `variable_names`). No variable named after the IR
  contains "__";
- every other name the code makes contains "__": its arguments and locals (`P__`, `pre__`,
  `init__`, `memory__`, `reverse__`, `seqs__`, `inputs__`, `ts__`, `i__`, `G__`, `backward__`,
  `d_outs__`, ...), a value's companions `<var>__<role>` (`x__in`, `h__d1`, `W__T`, `h__tape`,
  `h__g` its gradient; `ROLES`), the functions `cell_LSTM__I_8__H_16` (`cell_A__` without
  sizes; the twins end `__grad` and `__loop`) and `DTYPE__`, the dtype the functions read.

Helpers, the fused-kernel wrapper, `forward` and `forward_grad` hold no IR value and keep plain
names, as do the module globals the runtime reads (`DTYPE`, `PARAMS`, `INPUTS`, ...).
"""

from __future__ import annotations

import builtins
import keyword
import math
from dataclasses import dataclass, field
from pathlib import Path

from ..analysis.tiles import tiling
from ..analysis.time_axes import callee_axes, straight_axes
from ..ir import in_edges, interface, output_source, outputs, topo_order
from ..ops import ELEMENTWISE_BINARY, Op
from ..scalars import scalar_eval, scalar_subs
from ..sizes import Size
from ..types import VType
from .emit_cell import CellEmitter
from .layout import Unsupported, align  # noqa: F401  (Unsupported: part of this module's API)
from .vocab import token_vocab

# the names without "__" that generated functions read besides their IR values (the backend's
# helpers are added per emitter): a node named like one of them gets an escaped variable
PLAIN = frozenset({"t", "B", "T", "np", "torch", "F", "_Run", "_Grads"})
# what a run of a cell, block or model returns (every generated module defines it after its
# imports), and what a run's backward function returns (modules with gradients)
RUN_TYPE = ["# a run of a cell, block or model: outputs and per-step states by name (batch-first), final",
            "# states by name, and (gradient twins) the backward function, which returns a _Grads",
            "_Run = namedtuple('_Run', 'outputs states final backward', defaults=(None,))"]
GRADS_TYPE = ["# gradients with respect to a run's inputs, initial states and memories, by name",
              "_Grads = namedtuple('_Grads', 'inputs state memories')"]
BUILTIN = frozenset(dir(builtins)) | frozenset(keyword.kwlist) | frozenset(keyword.softkwlist)
# `<var>__<role>`: the companions of a value (no role contains "_", so `<var>__<role>` splits
# at its last "__"; `grad` and `loop` end function names and are never roles)
ROLES = ("in", "t", "steps", "T", "parts", "d1", "d2", "init", "list", "buf", "seq", "tape",  # d1, d2, ...: delays
         "all", "full", "cut", "runs", "P", "H", "G", "g", "gT", "gO", "gB", "ginit", "back", "d")


@dataclass
class Emitter:
    """A backend: `table` maps each op to f(node, args, in_types) -> expression text."""

    name: str
    imports: str
    kernels: object  # a seqdsl.kernels.Kernels: the helpers generated code may call (copied in as used)
    table: dict
    stack: str  # format with {items}: stack a list of per-step values batch-first
    steps: str  # format with {v}: make a time-major array indexable per step
    to_time_major: str  # format with {v}
    to_batch_first: str  # format with {v}
    every_step: str  # format with {v}: a batched value (B, ...) repeated at every step, (B, T, ...)
    as_array: str  # format with {v}: a value of parameters and numbers alone as an array of the module's dtype
    grad: bool = False  # the backend generates its own backward pass (`forward_grad`)
    always: tuple = ()  # kernels every module holds, called or not (torch: `_CTX`, set by its wrapper)
    into: dict | None = None  # op -> f(node, args, types, out): the result written into array `out`
    empty: str | None = None  # format with {shape}: an uninitialised array of dtype DTYPE__ (enables the memory plan)
    pre_transpose: str | None = None  # format with {v}: a weight transposed once before the loop
    fused_cell: object = None  # f(fname, loop_fname, Standard, sizes, masked, step) -> lines, for recognised cells
    passes: tuple = ()  # backend-specific passes run after the shared PIPELINE
    split: str | None = None  # format with {v}, {sizes}: slices that tile a value taken in one call
    # generation's step module works on one step's values, (B, ...) with no step axis (cells are
    # straight-line code; the stepper passes and reads per-step values as they are); else (B, 1, ...)
    step_values: bool = False
    step_passes: tuple = ()  # passes that run first on the step module's cells (before the shared PIPELINE)
    # op -> f(node, args, types): ops whose value the backend computes as the tuple of the slices
    # that tile it (emitted as `<v>__parts = ...`; its readers are those slices alone)
    tuples: dict = field(default_factory=dict)
    # the loop over the samples still running (backends/emit_rows.py): a zero-filled array of the
    # module's dtype, a copy of a value, and (torch) whether a cell taking lengths gets a `__rows`
    # twin it runs when autograd is off (NumPy inference runs on rows in the function itself)
    zeros: str = "np.zeros({shape}, dtype=DTYPE__)"
    copy: str = "{v}.copy()"
    rows_twin: bool = False

    def writes_into(self, g, n) -> bool:
        """Can the backend write node n's result into a given array?"""
        d = g.nodes[n]
        if not self.into or d["op"] not in self.into:
            return False
        if d["op"] == Op.MATMUL:
            (w, _, _), (x, _, _) = in_edges(g, n)
            wt, xt = g.nodes[w]["type"], g.nodes[x]["type"]
            return not wt.batched and wt.rank == 2 and xt.batched and not xt.seq
        return True

    def emit(self, node: dict, args: list, types: list) -> str:
        fn = self.table.get(node["op"])
        if fn is None:
            raise Unsupported(f"the {self.name} backend cannot compile op '{node['op'].value}'", node["span"])
        return fn(node, args, types)


def number(value) -> str:
    """A number as a Python literal; `float('-inf')` (and inf, nan), which have none."""
    v = float(value)
    return repr(v) if math.isfinite(v) else f"float({repr(v)!r})"


def binary(symbol: str):
    def f(node, args, types):
        out = node["type"]
        return f"{align(args[0], types[0], out)} {symbol} {align(args[1], types[1], out)}"
    return f


def transposed(v: str) -> str:
    """`v.T`, unless `v` is a weight the loop already holds transposed (named `*__T`)."""
    return v if v.endswith("__T") else f"{v}.T"


def matmul(node, args, types):
    (a, b), (ta, tb) = args, types
    if not ta.batched and tb.batched:
        return f"{b} @ {transposed(a)}" if ta.rank == 2 else f"{b} @ {a}"
    if ta.batched and not tb.batched:
        return f"{a} @ {b}"
    if ta.batched and tb.batched:
        if not ta.seq and not tb.seq:
            return f"({a} * {b}).sum(-1)"
        seq, vec = (a, b) if ta.seq else (b, a)
        return f"({seq} @ {vec}[..., None])[..., 0]"
    return f"{a} @ {b}"


COMMON = {
    **{op: binary(sym) for op, sym in ELEMENTWISE_BINARY.items()},
    Op.NEG: lambda n, a, t: f"-{a[0]}",
    Op.IDENTITY: lambda n, a, t: a[0],
    Op.MATMUL: matmul,
    Op.ADDCMUL: lambda n, a, t: f"{align(a[0], t[0], n['type'])} + {align(a[1], t[1], n['type'])} * "
                                f"{align(a[2], t[2], n['type'])}",
    Op.ADDMM: lambda n, a, t: f"{a[0]} + {a[2]} @ {transposed(a[1])}",
    Op.SLICE: lambda n, a, t: f"{a[0]}[..., {n['start'].value}:{n['stop'].value}]",
    Op.CONST: lambda n, a, t: number(n["value"]),
    Op.SUM: lambda n, a, t: f"{a[0]}.sum(1)",
    Op.WSUM: lambda n, a, t: f"({a[0]}[..., None, :] @ {a[1]})[..., 0, :]",
    Op.LSTM_CELL: lambda n, a, t: f"_lstm_cell({', '.join(a)})",
    Op.LAST: lambda n, a, t: f"{a[0]}[:, -1]",
    Op.SOFTMAX: lambda n, a, t: f"_softmax({a[0]})",
    Op.LAYERNORM: lambda n, a, t: f"_layernorm({a[0]}, {a[1]}, {a[2]})",
    Op.EMBED: lambda n, a, t: f"{a[1]}[{a[0]}]",
    Op.ONEHOT: lambda n, a, t: f"_onehot({a[0]}, {n['size'].value})",
    Op.SHIFT: lambda n, a, t: f"_shift({a[0]}, {a[1] if len(a) == 2 else _fill(n, t[0])})",
    # (q, k, v) → `_attention`; with a 4th operand, the key-padding mask, `_masked_attention`
    Op.ATTENTION: lambda n, a, t: f"{'_masked_attention' if len(a) == 4 else '_attention'}({', '.join(a)}, "
                                  f"{n['heads'].value}, {n['causal']!r})",
    Op.POSITIONS: lambda n, a, t: f"_positions(T, {n['type'].dims[0].value})",
}


def _fill(n, t) -> str:
    """What y[t-1] reads at the first step: the start token's id, or 0.0."""
    return str(int(n["fill"])) if t.dtype == "int" else repr(float(n["fill"]))


def predicted(g) -> dict:
    """output → {"dist", "per_step", "dims", "classes" (categorical), "std" (normal), "previous"
    (the model reads it at t-1)} for each `out y ~ ...` of graph g."""
    reads = {u for u, d in g.nodes(data=True) if d["op"] == Op.INPUT and any(
        g.nodes[v]["op"] == Op.SHIFT for v in g.successors(u))} | set((g.graph.get("step") or {}).get("previous", ()))
    out = {}
    for _, d in sorted(g.nodes(data=True)):
        if d["op"] == Op.OUTPUT and d.get("dist"):
            t, name = d["type"], d["output"]
            dims = t.concrete_dims()
            out[name] = {"dist": d["dist"], "per_step": t.seq, "dims": dims,
                         "classes": dims[0] if d["dist"] == "categorical" else None, "std": d.get("std"),
                         "previous": name in reads}
    return out


def _concrete(v):
    return v.value if isinstance(v, Size) else v


def reserved_names(em) -> frozenset:
    """The names without "__" a backend's generated functions read besides their IR values."""
    return PLAIN | BUILTIN | em.kernels.names


class Codegen:
    """Prints a compile plan (`seqdsl.driver.Plan`) as a module for the backend `em`."""

    def __init__(self, program, plan, emitter: Emitter, dtype: str):
        self.program = program
        self.plan = plan
        self.em = emitter
        self.dtype = dtype
        self.last_line = None  # (file, line) of the spec line the code just emitted comes from
        self.pre_t: dict = {}  # the function being generated: node -> (port, weight transposed once)
        self.v = None  # the function being generated: node -> its variable
        self.types: dict = {}  # the function being generated: node -> its type as the code holds it (`step_types`)
        self.dispatches = False  # the cell function just generated runs its `__rows` twin when autograd is off

    @property
    def step_values(self) -> bool:
        """The module is generation's step module on per-step values (`Emitter.step_values`)."""
        return self.plan.cache_once and self.em.step_values

    def callee(self, d: dict):
        """The unit (`seqdsl.driver.Unit`) a call node runs."""
        return self.plan.callee(d)

    # ---- parameters of a unit, qualified by instance path -------------------------
    def param_table(self, u, prefix: str = "") -> dict:
        out = {}
        for n in topo_order(u.graph):
            d = u.graph.nodes[n]
            if d["op"] == Op.PARAM:
                shape = d["type"].concrete_dims()
                init = (d["init"][0], scalar_eval(scalar_subs(d["init"][1], {})))
                out[prefix + n] = (shape, init)
            elif d["op"] == Op.CALL:
                out.update(self.param_table(self.callee(d), prefix + d["instance"] + "."))
        return out

    # ---- function bodies ------------------------------------------------------------
    def args_of(self, g, n, ctx) -> tuple:
        names, types = [], []
        for u, _, delay in in_edges(g, n):
            names.append(ctx(u, delay))
            types.append(self.types.get(u, g.nodes[u]["type"]))
        if n in self.pre_t and self.pre_t[n][1] in g:
            port, w = self.pre_t[n]
            names[port] = f"{self.v(w)}__T"
        return names, types

    def source_note(self, d) -> list:
        """`# lstm.seq:12: c = f * c[t-1] + i * g` when node d comes from another spec line than
        the code just before it (torch.fx does the same): every generated line maps back to the
        spec. The text is escaped to printable ASCII, so it can never end the comment."""
        span = d.get("span")
        if span is None or span.line <= 0 or (span.file, span.line) == self.last_line:
            return []
        self.last_line = (span.file, span.line)
        text = "".join(c if " " <= c <= "~" else c.encode("unicode_escape").decode("ascii")
                       for c in span.source_line().strip())
        where = f"{Path(span.file).name}:{span.line}"
        where = "".join(c if " " <= c <= "~" else "?" for c in where)
        return [f"# {where}: {text[:100]}" + ("..." if len(text) > 100 else "")]

    def assign(self, g, n, ctx) -> str:
        v = self.v
        d = g.nodes[n] if n not in self.types else {**g.nodes[n], "type": self.types[n]}
        args, types = self.args_of(g, n, ctx)
        line = None
        if self.em.split and d["op"] == Op.SLICE:
            src = in_edges(g, n)[0]
            parts = tiling(g, src[0]) if not src[2] else None
            # `src__parts` exists only where src itself went through assign (below), and only as
            # src's own variable: not for a leaf the prologue binds (input, parameter, memory,
            # a run's result) nor for a hoisted value read per step (`src__steps[t]`)
            leaf = g.nodes[src[0]]["op"] in (Op.INPUT, Op.PARAM, Op.MEMORY, Op.CALL, Op.GET)
            if parts and not leaf and args[0] == v(src[0]):
                line = f"{v(n)} = {args[0]}__parts[{parts.index(n)}]"
        if d["op"] in self.em.tuples and tiling(g, n):  # the parts themselves, as the backend computes them
            return "\n".join(self.source_note(d) + [f"{v(n)}__parts = {self.em.tuples[d['op']](d, args, types)}"])
        if line is None:
            line = f"{v(n)} = {self.em.emit(d, args, types)}"
        # a value whose slices tile it is split in one call, also when it is itself a part
        if self.em.split and tiling(g, n):
            sizes = [g.nodes[s]["type"].dims[-1].value for s in tiling(g, n)]
            line += f"\n{v(n)}__parts = {self.em.split.format(v=v(n), sizes=sizes)}"
        return "\n".join(self.source_note(d) + [line])

    def gen_straight(self, u, grad: bool = False) -> list:
        """A block or model: straight-line code on batch-first values (+ a backward closure)."""
        g = u.graph
        v = self.v = u.names.__getitem__
        self.pre_t = {}
        self.last_line = None
        self.types = self.step_types(g) if self.step_values and not grad else {}
        lines = [f"def {u.twin('grad') if grad else u.fname}(P__, pre__, inputs__):"]
        body = []
        first_seq = None
        for n in topo_order(g):
            d = g.nodes[n]
            op = d["op"]
            if op == Op.INPUT:
                body.append(f"{v(n)} = inputs__[{n!r}]")
                if d["type"].seq and first_seq is None:
                    first_seq = n
                    body.append("T = 1  # one step's values" if self.step_values else f"T = {v(n)}.shape[1]")
            elif op == Op.PARAM:
                body.append(f"{v(n)} = P__[pre__ + {n!r}]")
            elif op == Op.OUTPUT:
                continue
            elif op == Op.CALL:
                body.append(self.call_line(g, n, grad))
            elif op == Op.GET:
                body.append(self.get_line(g, n))
            else:
                body.extend(self.assign(g, n, lambda s, k: v(s)).split("\n"))
        outs = ", ".join(f"{g.nodes[o]['output']!r}: {v(output_source(g, o))}" for o in outputs(g))
        finals = []
        for n, d in g.nodes(data=True):
            if d["op"] == Op.CALL and d["kind"] == "cell":
                callee = self.callee(d)
                for s in interface(callee.graph)["states"]:
                    finals.append(f"{d['instance'] + '.' + s!r}: {v(n)}.final[{s!r}]")
        if grad:
            from .numpy_grad import straight_backward

            body.append("")
            body.append("def backward__(d_outs__, d_seqs__, d_final__, G__):")
            body += ["    " + x for x in straight_backward(self, u, g)]
            body.append(f"return _Run(outputs={{{outs}}}, states={{}}, final={{{', '.join(finals)}}}, "
                        "backward=backward__)")
        else:
            body.append(f"return _Run(outputs={{{outs}}}, states={{}}, final={{{', '.join(finals)}}})")
        return lines + ["    " + b for b in body]

    def step_types(self, g) -> dict:
        """Generation's step module on one step's values: node → its type as the code holds it, for
        each value along the step axis (the predictions read at t-1 and what follows them), which
        the code holds without that axis: not a sequence, unless it also runs over a memory's
        positions (attention weights, (B, S)). So a per-sample value meets it with no step axis
        to broadcast over."""
        previous = set((g.graph.get("step") or {}).get("previous", ()))
        # (a value with two axes keeps the memory's)
        axis, _nested = straight_axes(g, lambda d: callee_axes(self.callee(d).graph))
        return {n: d["type"].with_(seq=False) for n, d in g.nodes(data=True)
                if d["type"].seq and axis.get(n) in previous}

    def call_line(self, g, n, grad: bool) -> str:
        """A run of a cell or block: its function called with this instance's parameter prefix."""
        v, d = self.v, g.nodes[n]
        callee = self.callee(d)
        fn = callee.twin("grad") if grad else callee.fname
        ins = {p: v(src) for src, p, _ in in_edges(g, n)}
        prefix = d["instance"] + "."
        if callee.kind != "cell":
            items = ", ".join(f"{k!r}: {x}" for k, x in ins.items())
            return f"{v(n)} = {fn}(P__, pre__ + {prefix!r}, {{{items}}})"
        ci = interface(callee.graph)
        xs = "".join(f"{ins[x]}, " for x in ci["inputs"])
        init = ", ".join(f"{k!r}: {x}" for k, x in ins.items() if k in ci["states"])
        mem = ", ".join(f"{k!r}: {x}" for k, x in ins.items() if k in ci["memories"])
        # per-step states are only collected when the model reads them (enc.h)
        reads_states = any(g.nodes[c]["op"] == Op.GET and g.nodes[c]["field"] in ci["states"] for c in g.successors(n))
        return (f"{v(n)} = {fn}(P__, pre__ + {prefix!r}, {xs}{{{init}}}, {{{mem}}}, {d['reverse']!r}"
                + (", True" if reads_states else "") + ")")

    def get_line(self, g, n) -> str:
        """A field of a run: `enc.outputs['y']`, `enc.states['h']` (per step) or `enc.final['h']`."""
        v, field_ = self.v, g.nodes[n]["field"]
        (src,) = [u_ for u_, _, _ in in_edges(g, n)]
        if g.nodes[src]["kind"] == "block":
            return f"{v(n)} = {v(src)}.outputs[{field_!r}]"
        if field_.startswith("final."):
            return f"{v(n)} = {v(src)}.final[{field_[6:]!r}]"
        out_names = interface(self.callee(g.nodes[src]).graph)["outputs"]
        return f"{v(n)} = {v(src)}.{'outputs' if field_ in out_names else 'states'}[{field_!r}]"

    def gen_cell(self, u, grad: bool = False, rows: bool = False) -> list:
        """A cell: the step loop (+ with grad=True, a tape and a backward closure; with rows=True,
        its `__rows` twin); see seqdsl.backends.emit_cell."""
        self.types = {}
        ce = CellEmitter(self, u, grad, rows)
        self.dispatches = ce.dispatch
        return ce.lines()

    def run_states(self, u) -> dict:
        """`<instance>.<state>` → type, for every run of a cell in a model or block unit `u`, and
        `<y>.last` (the value y[t-1] reads first) for each prediction it reads at t-1."""
        out = {}
        for n, d in u.graph.nodes(data=True):
            if d["op"] == Op.CALL and d["kind"] == "cell":
                for s, t in interface(self.callee(d).graph)["states"].items():
                    out[f"{d['instance']}.{s}"] = t
            elif d["op"] == Op.SHIFT:
                t = d["type"]
                out[f"{next(iter(u.graph.pred[n]))}.last"] = VType(t.dims, False, t.dtype, True)
        return out

    def metadata(self, main, name: str) -> list:
        """The module's constants the runtime reads: KIND, NAME, SIZES, PARAMS, INPUTS, MEMORIES,
        OUTPUTS, MASKS (hidden input → (kind, the input or memory whose lengths make it); empty
        unless the module takes lengths), OUTPUT_AXES (output → the input whose lengths its time
        axis has), FOLLOWS (a sequence input a run reads at another's steps → that one), UNZEROED
        (a cell's per-step outputs the runtime zeroes at padding), HAS_DROPOUT (the definition uses
        dropout), DROPOUTS (hidden input → (p, variational, the input or memory its axis follows,
        dims): masks the runtime draws in
        training; empty unless the module is for training), STATES and STATE_SHAPES; PREDICTED (a
        model's `out y ~ ...`: output → its distribution, docs/api.md) and STEP (the begin and step
        modules of generation: `passes.split_steps`; None otherwise)."""
        iface = interface(main.graph)
        params = self.param_table(main)
        runs = self.run_states(main)  # a model: its runs' states, `enc.h` (what `state=` and `final` hold)
        finals = {s: str(t) for s, t in iface["states"].items()} if main.kind == "cell" else \
            {k: str(t) for k, t in runs.items()}
        # a cell's executable takes the whole sequence of its per-step input; token ids range over
        # the smallest vocabulary that reads them, through the blocks it runs (None: not checked)
        vocab = {n: token_vocab(self.program, main.graph, n) for n, t in iface["inputs"].items() if t.dtype == "int"}
        masks = main.graph.graph.get("masks", {})  # hidden inputs the runtime makes from lengths=
        drops = {n: (p, var, axis, main.graph.nodes[n]["type"].concrete_dims())  # ... and draws for dropout
                 for n, (p, var, axis) in main.graph.graph.get("dropouts", {}).items()}
        hidden = set(masks) | set(drops)
        inputs = {n: (str(t), t.concrete_dims(), t.dtype, t.seq or main.kind == "cell", vocab.get(n))
                  for n, t in iface["inputs"].items() if n not in hidden}
        inputs.update({n: (str(t), t.concrete_dims(), t.dtype, t.seq, None) for n, t in iface["memories"].items()
                       if n not in hidden})
        has_dropout = any(d["op"] == Op.DROPOUT for u in self.plan.units for _, d in u.source.nodes(data=True))
        outputs = {n: str(t) for n, t in iface["outputs"].items()}
        state_types = iface["states"] if main.kind == "cell" else runs
        return ["", f"KIND = {main.kind!r}", f"NAME = {name!r}",
                f"SIZES = {{{', '.join(f'{k!r}: {_concrete(v)!r}' for k, v in main.sizes.items())}}}",
                "PARAMS = {", *[f"    {k!r}: ({s!r}, {i!r})," for k, (s, i) in params.items()], "}",
                f"INPUTS = {inputs!r}", f"MEMORIES = {tuple(m for m in iface['memories'] if m not in hidden)!r}",
                f"OUTPUTS = {outputs!r}", f"MASKS = {dict(sorted(masks.items()))!r}",
                f"OUTPUT_AXES = {main.graph.graph.get('output_axes', {})!r}",
                f"FOLLOWS = {main.graph.graph.get('follows', {})!r}",
                f"HAS_DROPOUT = {has_dropout!r}", f"DROPOUTS = {dict(sorted(drops.items()))!r}",
                f"UNZEROED = {tuple(main.graph.graph.get('unzeroed', ()))!r}",
                f"STATES = {{{', '.join(f'{k!r}: {v!r}' for k, v in finals.items())}}}",
                f"STATE_SHAPES = {{{', '.join(f'{s!r}: {t.concrete_dims()!r}' for s, t in state_types.items())}}}",
                f"STATE_TOKENS = {tuple(k for k, t in state_types.items() if t.dtype == 'int')!r}",
                f"PREDICTED = {predicted(main.graph)!r}", f"STEP = {main.graph.graph.get('step')!r}"]

    def functions(self) -> tuple:
        """Every unit's function (and twins), and whether a cell has a `__rows` twin."""
        out, rows = [], False
        for u in self.plan.units:
            if u.standard is not None:
                masked = bool(u.graph.graph.get("masks"))
                out += ["", *self.em.fused_cell(u.fname, u.twin("loop"), u.standard, u.sizes, masked,
                                                self.step_values), ""]
                u = u.loop()
            body = self.gen_cell(u) if u.kind == "cell" else self.gen_straight(u)
            out += ["", *body, ""]
            if u.kind == "cell" and self.dispatches:  # on a CPU the function runs its `__rows` twin
                out += ["", *self.gen_cell(u, rows=True), ""]
                rows = True
        if self.em.grad:
            for u in self.plan.units:
                body = self.gen_cell(u, grad=True) if u.kind == "cell" else self.gen_straight(u, grad=True)
                out += ["", *body, ""]
        return out, rows

    def module(self, source_file: str) -> str:
        main = self.plan.main
        name = main.defn
        iface = interface(main.graph)
        sizes_txt = ", ".join(f"{k}={_concrete(v)}" for k, v in main.sizes.items())
        out = [f"# Generated by seqdsl from {source_file!r}: {main.kind} {name}({sizes_txt})",  # NOTE: repr, never raw
               f"# backend: {self.em.name}, dtype: {self.dtype}. Regenerate with `seqdsl compile`; do not edit.",
               "from collections import namedtuple", "", self.em.imports, "",
               *RUN_TYPE, *(GRADS_TYPE if self.em.grad else ()), "", f"DTYPE = {self.dtype!r}"]
        if self.plan.cache_once:  # generation sets it to a dict while it steps: what cells compute once, kept
            out += ["# while generation steps (stepping.Stepper.cached), what each cell computes once, by prefix",
                    "_CACHE = None",
                    "# the step's inputs and outputs: one step's values (B, ...), or sequences of one step (B, 1, ...)",
                    f"STEP_VALUES = {self.step_values!r}"]
        if self.em.empty:  # what the functions read: a value may be named DTYPE
            out.append("DTYPE__ = DTYPE")

        kernels_at = len(out)  # the kernels the functions below call go here
        functions, rows = self.functions()
        if rows:
            out += ["# on a CPU, a cell taking lengths runs its loop on the samples still running (its `__rows`",
                    "# twin); False: the masked loop, as on a GPU (tests compare the two)", "ROWS_ON_CPU__ = True"]
            kernels_at = len(out)
        out += functions
        out += self.metadata(main, name)
        out += ["", "", "def forward(P, inputs, state=None):",
                '    """Run the definition: (outputs, final states) as dicts by spec name."""']
        if main.kind == "cell":
            xs = "".join(f"inputs[{x!r}], " for x in iface["inputs"])
            mems = ", ".join(f"{m!r}: inputs[{m!r}]" for m in iface["memories"])
            call = (f"(P, '', {xs}dict(state or {{}}), {{{mems}}})")
        else:
            call = "(P, '', inputs)"
        out += [f"    run = {main.fname}{call}", "    return run.outputs, run.final"]
        if self.em.grad:
            out += ["", "", "def forward_grad(P, inputs, state=None):",
                    '    """Run forward keeping what backward needs: (outputs, final, backward)."""',
                    f"    run = {main.twin('grad')}{call}", "",
                    "    def backward(d_outs, d_final=None):",
                    '        """Gradients {"params", "inputs", "state"} for output cotangents `d_outs`."""',
                    "        G = {}",
                    "        grads = run.backward(d_outs, {}, dict(d_final or {}), G)",
                    "        return {'params': G, 'inputs': {**grads.inputs, **grads.memories}, 'state': grads.state}",
                    "", "    return run.outputs, run.final, backward"]
        used = self.em.kernels.source_for("\n".join(out[kernels_at:]), self.em.always)
        out[kernels_at:kernels_at] = ["", used, ""] if used else []
        return "\n".join(out) + "\n"

"""Lower: AST definition (+ bound sizes) → IR graph, with shapes inferred as it goes.

In:  an `ast.Definition`, a size environment (name → `Size` or bool) and a `resolve`
     function that returns the interface of other definitions (for runs in models).
Out: a networkx.MultiDiGraph (see seqdsl.ir), verified; `SpecError` for unknown names,
     duplicates, wrong arity, shape mismatches, algebraic loops, bad delays, ...

A size read in an expression is a number (a `const` node: `x / sqrt(H)`); an exponent (`x ** 2`) and
clip's bounds are numbers, kept as attributes. A warning lowering finds (a run started `from` final
states it leaves partly unused) is kept on the graph, `g.graph["warnings"]`, for `seqdsl.check`.

Cells are systems of equations: each name is assigned once, in any order, and a cycle
must pass through a delayed reference `h[t-k]`. Blocks and models are sequential: a
statement sees what was bound before it, and a name may be re-bound (`x = f(x)`).
"""

from __future__ import annotations

import networkx as nx

from . import ast as A
from .ast import source_text
from .check import algebraic_loop_error
from .errors import Span, SpecError, did_you_mean
from .ir import add_node, in_edges, new_graph, verify
from .lower_predict import PredictLowering
from .lower_runs import RunLowering
from .lower_values import Delayed, Equation, Pending, RunHandle, State
from .ops import FUNCTIONS, OPS, Op, infer
from .parse import check_identifier
from .size_exprs import SizeScope
from .sizes import MAX_SIZE, Size
from .types import VType

MAX_DELAY = 1000
MAX_REPEAT = 10000
MAX_NODES = 200_000
MAX_ELEMENTS = 1 << 31  # elements in one value (a parameter, or one sample's activation)

INITIALIZERS = {"uniform": 1, "normal": 1}


class Lowerer:
    """Lowers one definition; model wiring (runs, their fields) goes to `self.runs`."""

    def __init__(self, defn: A.Definition, env: dict, resolve=None):
        self.defn = defn
        self.env = env
        self.sizes = SizeScope(defn, env)
        self.resolve = resolve
        self.runs = RunLowering(self)
        self.predict = PredictLowering(self)
        self.g = new_graph(defn.kind, defn.name, env, defn.span)
        self.scope: dict = {}
        self.declared_types: dict = {}
        self.pending_delays: list = []
        self.splits: dict = {}
        self.used_names: set = set()
        self.next_suffix: dict = {}  # name -> where fresh() looks for its next free suffix
        self.counters: dict = {}
        self.temps: set = set()  # the names temp() made: their nodes are marked temp=True
        self.instance_counts: dict = {}
        self.prefix = ""
        self.target = "v"
        self.root_of_stmt = None
        self.equations: dict = {}  # cells: name -> its Assign
        self.lowered: dict = {}  # cells: name -> its node, once lowered
        self.in_progress: list = []  # cells: the equations being lowered (an algebraic loop repeats one)
        self.outputs_seen: set = set()  # blocks and models
        self.warnings: list = []  # (message, span, hint): kept on the graph as g.graph["warnings"] (seqdsl.check)

    # ---- naming ---------------------------------------------------------------
    def temp(self, base: str) -> str:
        """A name for a temporary (`_` + base + a count); the node made with it gets `temp=True`."""
        base = base.replace(".", "_")
        while True:  # `_c` + 11 and `_c1` + 1 are both `_c11`: skip a name already given out
            n = self.counters.get(base, 0) + 1
            self.counters[base] = n
            name = f"_{base}{n}"
            if name not in self.temps and name not in self.g:
                break
        self.temps.add(name)
        return name

    def fresh(self, name: str) -> str:
        if name not in self.g and name not in self.used_names:
            self.used_names.add(name)
            return name
        # the smallest free suffix: every suffix below the last one given out is taken (names are
        # never freed), so the search starts there (from 2 every time was quadratic in re-bindings)
        k = self.next_suffix.get(name, 2)
        while f"{name}_{k}" in self.g or f"{name}_{k}" in self.used_names:
            k += 1
        self.next_suffix[name] = k + 1
        self.used_names.add(f"{name}_{k}")
        return f"{name}_{k}"

    def instance(self, kind: str, is_root: bool) -> str:
        base = self.prefix + (self.target if is_root else f"{self.target}_{kind}")
        n = self.instance_counts.get(base, 0) + 1
        self.instance_counts[base] = n
        return base if n == 1 else f"{base}{n}"

    # ---- node creation ----------------------------------------------------------
    def node(self, op: Op, inputs, span: Span, name: str | None = None, **attrs) -> str:
        types = [self.g.nodes[src]["type"] if d == 0 else self.declared_types[src] for src, d in inputs]
        t = infer(op, attrs, types, span)
        self._check_dims(t, span)
        if self.g.number_of_nodes() >= MAX_NODES:
            raise SpecError(f"definition grows past {MAX_NODES} IR nodes", span)
        name = name or self.temp(self.target)
        real_inputs = []
        for i, (src, d) in enumerate(inputs):
            if d:
                self.pending_delays.append((src, name, i, d))
            else:
                real_inputs.append((src, 0, i))
        add_node(self.g, name, op, t, span, real_inputs, **self._marked(name, attrs))
        return name

    def leaf(self, op: Op, name: str, t: VType, span: Span, **attrs) -> str:
        self._check_dims(t, span)
        return add_node(self.g, name, op, t, span, (), **self._marked(name, attrs))

    def _marked(self, name: str, attrs: dict) -> dict:
        """`attrs`, with `temp=True` when `name` is a temporary's (made by `temp()`)."""
        return {**attrs, "temp": True} if name in self.temps else attrs

    def _check_dims(self, t: VType, span: Span) -> None:
        count = 1
        for d in t.dims:
            v = d.value
            if v is not None and not (0 < v <= MAX_SIZE):
                raise SpecError(f"size {v} is out of range" + (" (sizes must be positive)" if v <= 0 else
                                f" (the limit is {MAX_SIZE})"), span)
            count *= v or 1
        if count > MAX_ELEMENTS:
            per = " per sample" if t.batched else ""
            raise SpecError(f"a value of shape {t} has {count} elements{per}; the limit is {MAX_ELEMENTS}",
                            span, "sizes this large could not be allocated")

    # ---- types and initializers -------------------------------------------------
    def type_of(self, t: A.TypeExpr) -> VType:
        if t.kind == "tokens":
            return VType((), True, "int", True)
        dims = tuple(self.sizes.positive(d) for d in t.dims)
        return VType(dims, t.kind == "seq", "float", True)

    def param_init(self, item: A.ParamItem, t: VType):
        if item.init is None:
            fan_in = t.dims[-1] if t.dims else Size.const(1)
            return ("uniform", ("bin", "/", ("num", 1.0), ("sqrt", ("size", fan_in))))
        e = item.init
        if item.init_kind == "const":
            if isinstance(e, A.Name) and e.id in ("zeros", "ones"):
                return ("const", ("num", 0.0 if e.id == "zeros" else 1.0))
            return ("const", self.sizes.scalar(e))
        if isinstance(e, A.Name) and e.id in ("zeros", "ones"):
            return ("const", ("num", 0.0 if e.id == "zeros" else 1.0))
        if not isinstance(e, A.Call) or e.func not in INITIALIZERS:
            name = e.func if isinstance(e, A.Call) else "?"
            raise SpecError(f"unknown initializer '{name}'", e.span,
                            did_you_mean(name, INITIALIZERS) or "use uniform(a), normal(std), = 0 or = zeros")
        if len(e.args) != 1 or e.kwargs:
            raise SpecError(f"{e.func}() takes 1 argument, got {len(e.args) + len(e.kwargs)}", e.span)
        return (e.func, self.sizes.scalar(e.args[0]))

    # ---- declarations -----------------------------------------------------------
    def declare(self, name: str, span: Span):
        if name in self.scope or name in self.env:
            raise SpecError(f"'{name}' is declared twice", span)

    def lower_decls(self, stmts) -> None:
        for s in stmts:
            if isinstance(s, A.InDecl):
                self.decl_input(s)
            elif isinstance(s, A.MemDecl):
                self.decl_memory(s)
            elif isinstance(s, A.StateDecl):
                self.decl_state(s)
            elif isinstance(s, A.ParamDecl):
                self.decl_params(s)

    def decl_input(self, s: A.InDecl) -> None:
        kind = self.defn.kind
        self.declare(s.name, s.span)
        t = self.type_of(s.type)
        if kind == "cell" and t.seq:
            raise SpecError(f"a cell's input is one step; '{s.name}: {t}' is a sequence", s.type.span,
                            f"declare 'in {s.name}: [..]' (the model runs the cell over a sequence) "
                            f"or 'memory {s.name}: seq[..]' to attend to a whole sequence")
        if kind == "cell" and t.dtype == "int":
            raise SpecError("a cell's input must be a vector; embed token ids in the model", s.type.span)
        if kind == "block" and not t.seq:
            raise SpecError(f"a block works on whole sequences; '{s.name}' must be seq[..]", s.type.span)
        self.scope[s.name] = self.leaf(Op.INPUT, self.fresh(s.name), t, s.span)

    def decl_memory(self, s: A.MemDecl) -> None:
        if self.defn.kind != "cell":
            raise SpecError("'memory' declares a cell's attended sequence; it only exists in cells", s.span)
        self.declare(s.name, s.span)
        t = self.type_of(s.type)
        if not t.seq:
            raise SpecError(f"memory '{s.name}' must be a sequence, seq[..]", s.type.span)
        self.scope[s.name] = self.leaf(Op.MEMORY, self.fresh(s.name), t, s.span)

    def decl_state(self, s: A.StateDecl) -> None:
        if self.defn.kind != "cell":
            raise SpecError(f"states belong in cells; a {self.defn.kind} has no time steps of its own", s.span,
                            "move the recurrence into a cell and run it with 'over'")
        v = self.scope.get(s.name)
        if isinstance(v, str) and self.g.nodes[v]["op"] == Op.INPUT:
            prev = self.free_name(f"{s.name}_prev")
            raise SpecError(f"'{s.name}' is declared twice: it is an input, and an input cannot also be a state",
                            s.span, f"to read earlier inputs, keep them in a state of their own: 'state {prev}: "
                            f"{self.declared_text(s.name)}', the equation '{prev} = {s.name}', then {prev}[t-1]")
        self.declare(s.name, s.span)
        t = self.type_of(s.type)
        if t.seq or t.dtype == "int":
            raise SpecError(f"state '{s.name}' must be a vector, not {t}", s.type.span)
        init = 0.0
        e = s.init
        if e is not None:
            if isinstance(e, A.Name) and e.id in ("zeros", "ones"):
                init = 0.0 if e.id == "zeros" else 1.0
            elif isinstance(e, A.Num) or (isinstance(e, A.Neg) and isinstance(e.operand, A.Num)):
                init = float(e.value if isinstance(e, A.Num) else -e.operand.value)
            else:
                raise SpecError("a state starts at zeros, ones or a number", e.span,
                                "a model can start it from any value: 'from (h = ...)'")
        self.declared_types[s.name] = t
        self.scope[s.name] = State(s.name, t, init, s.span)
        self.used_names.add(s.name)

    def decl_params(self, s: A.ParamDecl) -> None:
        """`param W, U: [H, H]`: the names before a shape share it."""
        if self.defn.kind == "model":
            raise SpecError("a model's parameters come from linear(), embed(), layernorm() and the "
                            "cells and blocks it runs", s.span, "declare explicit params in a cell or block")
        pending = []
        for item in s.items:
            self.declare(item.name, item.span)
            if any(p.name == item.name for p in pending):
                raise SpecError(f"'{item.name}' is declared twice", item.span)
            pending.append(item)
            if item.type is None:
                continue
            t = self.type_of(item.type)
            if t.seq or t.dtype == "int" or t.rank > 2:
                raise SpecError(f"a parameter is a scalar, vector or matrix, not {t}", item.type.span)
            t = t.with_(batched=False)
            for p in pending:
                init = self.param_init(item, t)
                self.scope[p.name] = self.leaf(Op.PARAM, self.fresh(p.name), t, p.span, init=init)
            pending = []
        if pending:
            raise SpecError(f"parameter '{pending[-1].name}' has no shape", pending[-1].span,
                            f"write 'param {pending[-1].name}: [H]'")

    # ---- expressions ------------------------------------------------------------
    def value(self, e, is_root: bool = False) -> str:
        """The node of expression `e` (a run means its first output; `h[t-k]` becomes an
        identity node reading the delayed state, so it can be an output or an argument)."""
        r = self.expr(e, is_root)
        if isinstance(r, RunHandle):
            return self.runs.default_output(r, e.span)
        if isinstance(r, Delayed):
            return self.node(Op.IDENTITY, [(r.node, r.delay)], e.span, self.root_name(is_root))
        return r

    def ref(self, name: str, span: Span, delay: int = 0):
        """What a name read in an expression stands for: a node, a run, `Pending` (an equation or
        a state at t, lowered on use) or `Delayed` (a state at t-k)."""
        if name in self.scope:
            v = self.scope[name]
            if isinstance(v, State):  # (states exist only in cells)
                return Delayed(name, delay) if delay else Pending(name)
            if delay:
                raise self.not_a_state(name, v, span, delay)
            if isinstance(v, Equation):
                return Pending(name)
            return v
        if self.predict.is_predicted(name):
            raise self.predict.read_now(name, span)
        if name in self.env:
            return self.size_value(name, span, delay)
        if name in BUILTIN_CALLS or name in FUNCTIONS:
            raise SpecError(f"'{name}' is a function; call it: {name}(...)", span)
        candidates = [k for k in self.scope] + list(self.env)
        raise SpecError(f"unknown name '{name}'", span, did_you_mean(name, candidates))

    def size_value(self, name: str, span: Span, delay: int = 0) -> str:
        """A size read as a number (`x / H`, `sqrt(H)`): a `const` node (its `value` is None, and
        `size` says which, while the size is symbolic)."""
        v = self.env[name]
        if isinstance(v, bool):
            raise SpecError(f"'{name}' is a flag (true/false), not a number", span)
        if delay:
            raise SpecError(f"'{name}' is a size, the same at every step; only states can be read at t-{delay}",
                            span, f"write {name}")
        attrs = {"value": float(v.value)} if v.value is not None else {"value": None, "size": v}
        return self.leaf(Op.CONST, self.temp("c"), VType((), False, "float", False), span, **attrs)

    def number_value(self, n):
        """The value of a node made of numbers alone (`0`, `(H - I)` with concrete sizes), else None."""
        d = self.g.nodes[n]
        if d["op"] == Op.CONST:
            return d.get("value")
        arith = {Op.ADD: lambda a, b: a + b, Op.SUB: lambda a, b: a - b, Op.MUL: lambda a, b: a * b,
                 Op.DIV: lambda a, b: a / b if b else None, Op.NEG: lambda a: -a}
        if d["op"] not in arith:
            return None
        vals = [self.number_value(u) for u, _, _ in in_edges(self.g, n)]
        return None if any(v is None for v in vals) else arith[d["op"]](*vals)

    def not_a_state(self, name: str, v, span: Span, delay: int) -> SpecError:
        """The error for `name[t-k]` when `name` is no state, with what to write instead."""
        what = f"only states can be read at t-{delay}"
        op = self.g.nodes[v]["op"] if isinstance(v, str) else None
        if op == Op.INPUT:
            prev = self.free_name(f"{name}_prev")
            return SpecError(f"'{name}' is an input; {what}", span,
                             f"keep earlier inputs in a state of their own: declare 'state {prev}: "
                             f"{self.declared_text(name)}', add the equation '{prev} = {name}', and read "
                             f"{prev}[t-{delay}] (zeros before the first step)")
        if op in (Op.PARAM, Op.MEMORY):
            kind = "parameter" if op == Op.PARAM else "memory"
            return SpecError(f"'{name}' is a {kind}, the same at every step; {what}", span, f"write {name}")
        return SpecError(f"'{name}' is not a state; {what}", span,
                         f"make it one: declare 'state {name}: [..]' (its shape); its equation stays as it is")

    def free_name(self, base: str) -> str:
        """`base`, or `base2`, `base3`, ...: a name nothing in the definition uses (for hints)."""
        taken = set(self.scope) | set(self.env) | {s for st in self.defn.body for s in _declared(st)}
        k, name = 1, base
        while name in taken:
            k += 1
            name = f"{base}{k}"
        return name

    def declared_text(self, name: str) -> str:
        """The type of `name` as its declaration writes it (`[I]`), else as the checker prints it."""
        for st in self.defn.body:
            if isinstance(st, (A.InDecl, A.MemDecl, A.StateDecl)) and st.name == name:
                text = source_text(st.type)
                if text:
                    return text
        v = self.scope.get(name)
        return str(self.g.nodes[v]["type"]) if isinstance(v, str) else "[..]"

    def expr(self, e, is_root: bool = False):
        if isinstance(e, A.Num):
            return self.leaf(Op.CONST, self.temp("c"), VType((), False, "float", False), e.span,
                             value=float(e.value))
        if isinstance(e, A.Bool):
            raise SpecError("true/false is a flag, not a value", e.span)
        if isinstance(e, A.Name):
            r = self.ref(e.id, e.span)
            if isinstance(r, RunHandle):
                return r
            return self.resolved(r)
        if isinstance(e, A.Delay):
            if isinstance(e.target, A.Name) and self.predict.is_predicted(e.target.id):
                if not e.k:
                    raise self.predict.read_now(e.target.id, e.span)
                return self.predict.previous(e)
            if self.defn.kind != "cell":
                raise SpecError("[t-k] reads an earlier step; steps only exist inside cells", e.span,
                                "write the recurrence in a cell and run it over the sequence")
            if not isinstance(e.target, A.Name):
                raise SpecError("only a state can be read at [t-k]", e.span)
            if e.k > MAX_DELAY:
                raise SpecError(f"delay {e.k} is larger than the limit {MAX_DELAY}", e.span)
            if e.k == 0:
                return self.resolved(self.ref(e.target.id, e.target.span))
            return self.ref(e.target.id, e.target.span, e.k)
        if isinstance(e, A.BinOp):
            a = self.operand(e.left)
            b = self.operand(e.right)
            if e.op == "*":
                self.check_not_matmul(e, a, b)
            op = {"+": Op.ADD, "-": Op.SUB, "*": Op.MUL, "/": Op.DIV, "@": Op.MATMUL}[e.op]
            if op == Op.DIV and self.number_value(b[0]) == 0:
                raise SpecError("division by zero: the divisor is the number 0", e.right.span,
                                "a size used as a number counts too: (H - I) is 0 when H = I")
            return self.node(op, [a, b], e.span, self.root_name(is_root))
        if isinstance(e, A.Neg):
            return self.node(Op.NEG, [self.operand(e.operand)], e.span, self.root_name(is_root))
        if isinstance(e, A.Pow):
            x = self.operand(e.base)
            k = self.sizes.number(e.exponent, "the exponent of '**'", "x ** k takes a number k: x ** 2, x ** 0.5, "
                                  "x ** -1 (for a value as the exponent, write exp(y * log(x)))")
            return self.node(Op.POW, [x], e.span, self.root_name(is_root), k=k)
        if isinstance(e, A.Last):
            if self.defn.kind == "cell":
                raise SpecError("[last] reads the end of a sequence; inside a cell there is one step", e.span)
            return self.node(Op.LAST, [(self.value(e.target), 0)], e.span, self.root_name(is_root))
        if isinstance(e, A.Attr):
            return self.runs.attr(e)
        if isinstance(e, A.Call):
            return self.call(e, is_root)
        if isinstance(e, A.Run):
            return self.runs.run(e, is_root)
        raise SpecError("unsupported expression", e.span)

    def operand_type(self, operand) -> VType:
        src, delay = operand
        return self.declared_types[src] if delay else self.g.nodes[src]["type"]

    def check_not_matmul(self, e: A.BinOp, a, b) -> None:
        """`W * x` with a matrix and a vector: the error says to write `W @ x`."""
        ta, tb = self.operand_type(a), self.operand_type(b)
        if {ta.rank, tb.rank} != {1, 2} or (ta if ta.rank == 2 else tb).batched:
            return
        (w, wt), (x, xt) = sorted(((_operand_text(e.left, "W"), ta), (_operand_text(e.right, "x"), tb)),
                                  key=lambda p: -p[1].rank)
        if wt.dims[1] == xt.dims[0]:
            fix = f"write {w} @ {x}"
        elif wt.dims[0] == xt.dims[0]:
            fix = f"write {x} @ {w}"
        else:
            fix = "and the sizes of these two do not fit '@' either"
        raise SpecError(f"shape mismatch in multiplication: {ta} * {tb} (a matrix and a vector)", e.span,
                        f"'*' multiplies elementwise; a matrix times a vector is '@': {fix}")

    def resolved(self, r):
        return self.equation_value(r.name) if isinstance(r, Pending) else r

    def operand(self, e):
        r = self.expr(e)
        if isinstance(r, RunHandle):
            return (self.runs.default_output(r, e.span), 0)
        if isinstance(r, Delayed):
            return (r.node, r.delay)
        return (r, 0)

    def root_name(self, is_root: bool):
        if is_root and self.root_of_stmt and self.root_of_stmt not in self.g:
            return self.root_of_stmt
        return None

    def args(self, e: A.Call, n: int | None, hint: str | None = None):
        if e.kwargs and e.func not in ("attention", "dropout"):
            raise SpecError(f"{e.func}() takes no keyword arguments", e.kwargs[0].span,
                            f"pass the argument by position: {e.func}(...)")
        if n is not None and len(e.args) != n:
            raise SpecError(f"{e.func}() takes {n} argument{'s' if n != 1 else ''}, got {len(e.args)}", e.span,
                            hint)
        return e.args

    def call_clip(self, e: A.Call, is_root: bool):
        x, lo, hi = self.args(e, 3, ARITY_HINTS["clip"])
        hint = "clip(x, lo, hi) takes numbers as bounds, e.g. clip(x, -1, 1); for bounds that are values, " \
               "write min(max(x, lo), hi)"
        low, high = self.sizes.number(lo, "clip's lower bound", hint), self.sizes.number(hi, "clip's upper bound", hint)
        if low > high:
            raise SpecError(f"clip's lower bound {low:g} is above its upper bound {high:g}", e.span,
                            "write clip(x, lo, hi) with lo <= hi")
        return self.node(Op.CLIP, [self.operand(x)], e.span, self.root_name(is_root), lo=low, hi=high)

    def call_dropout(self, e: A.Call, is_root: bool):
        """`dropout(x, p)`, `dropout(x, p, variational = true)`; p and variational also by keyword."""
        hint = ARITY_HINTS["dropout"]
        given = dict(zip(("x", "p", "variational"), e.args))
        if len(e.args) > 3:
            raise SpecError(f"dropout() takes x, p[, variational], got {len(e.args)} arguments", e.span, hint)
        for kw in e.kwargs:
            if kw.name not in ("p", "variational") or kw.name in given:
                raise SpecError(f"dropout() has no argument '{kw.name}'" if kw.name not in ("p", "variational")
                                else f"dropout() is given '{kw.name}' twice", kw.span,
                                did_you_mean(kw.name, ["p", "variational"]) or hint)
            given[kw.name] = kw.value
        if "x" not in given or "p" not in given:
            raise SpecError(f"dropout() needs x and p, got {len(given)} argument{'s' if len(given) != 1 else ''}",
                            e.span, hint)
        p = self.sizes.number(given["p"], "dropout's probability", hint)
        if not 0 <= p < 1:
            raise SpecError(f"dropout's probability is {p:g}; it must be at least 0 and below 1", given["p"].span, hint)
        variational = self.sizes.flag(given["variational"]) if "variational" in given else False
        x = self.operand(given["x"])
        t = self.operand_type(x)
        if not t.batched and t.rank >= 2:
            raise SpecError(f"dropout of a matrix of parameters ({t}) is not supported", given["x"].span,
                            "drop what the matrix multiplies instead: W @ dropout(x, p)")
        return self.node(Op.DROPOUT, [x], e.span, self.root_name(is_root), p=p, variational=variational)

    def call(self, e: A.Call, is_root: bool):
        """A call of a built-in: `tanh(x)`, `linear(x, N)`, ... (each lowered by its own method)."""
        if e.func in FUNCTIONS:
            op = FUNCTIONS[e.func]
            args = self.args(e, OPS[op].arity, ARITY_HINTS.get(e.func))
            return self.node(op, [self.operand(x) for x in args], e.span, self.root_name(is_root))
        lower = BUILTIN_CALLS.get(e.func)
        if lower is None:
            self.not_a_builtin(e)
        return lower(self, e, is_root)

    def call_concat(self, e: A.Call, is_root: bool):
        if len(e.args) < 2:
            raise SpecError("concat() takes at least 2 arguments", e.span)
        return self.node(Op.CONCAT, [self.operand(a) for a in e.args], e.span, self.root_name(is_root))

    def call_linear(self, e: A.Call, is_root: bool):
        name = self.root_name(is_root)
        x, n = self.args(e, 2)
        xv = self.value(x)
        out = self.sizes.positive(n, "output size")
        t = self.g.nodes[xv]["type"]
        if t.rank != 1 or t.dtype == "int":
            raise SpecError(f"linear() needs vectors, got {t}", x.span,
                            "token ids need embed(tokens, V, E) first" if t.dtype == "int" else None)
        inst = self.instance("linear", is_root)
        fan_in = ("uniform", ("bin", "/", ("num", 1.0), ("sqrt", ("size", t.dims[0]))))
        w = self.param_leaf(f"{inst}.W", VType((out, t.dims[0]), False, "float", False), e.span, fan_in)
        b = self.param_leaf(f"{inst}.b", VType((out,), False, "float", False), e.span, fan_in)
        mm = self.node(Op.MATMUL, [(w, 0), (xv, 0)], e.span)
        return self.node(Op.ADD, [(mm, 0), (b, 0)], e.span, name)

    def call_embed(self, e: A.Call, is_root: bool):
        name = self.root_name(is_root)
        tok, v, d = self.args(e, 3)
        tv = self.value(tok)
        vs, ds = self.sizes.positive(v, "vocabulary size"), self.sizes.positive(d, "embedding size")
        inst = self.instance("embed", is_root)
        table = self.param_leaf(f"{inst}.weight", VType((vs, ds), False, "float", False), e.span,
                                ("normal", ("num", 1.0)))
        return self.node(Op.EMBED, [(tv, 0), (table, 0)], e.span, name)

    def call_onehot(self, e: A.Call, is_root: bool):
        tok, v = self.args(e, 2)
        return self.node(Op.ONEHOT, [(self.value(tok), 0)], e.span, self.root_name(is_root),
                         size=self.sizes.positive(v, "vocabulary size"))

    def call_layernorm(self, e: A.Call, is_root: bool):
        name = self.root_name(is_root)
        (x,) = self.args(e, 1)
        xv = self.value(x)
        t = self.g.nodes[xv]["type"]
        if t.rank != 1:
            raise SpecError(f"layernorm() needs vectors, got {t}", x.span)
        inst = self.instance("layernorm", is_root)
        pt = VType(t.dims, False, "float", False)
        gamma = self.param_leaf(f"{inst}.gamma", pt, e.span, ("const", ("num", 1.0)))
        beta = self.param_leaf(f"{inst}.beta", pt, e.span, ("const", ("num", 0.0)))
        return self.node(Op.LAYERNORM, [(xv, 0), (gamma, 0), (beta, 0)], e.span, name)

    def call_attention(self, e: A.Call, is_root: bool):
        if len(e.args) < 3 or len(e.args) > 5:
            raise SpecError(f"attention() takes q, k, v[, heads[, causal]], got {len(e.args)} arguments", e.span)
        q, k, v = (self.operand(a) for a in e.args[:3])
        heads = self.sizes.positive(e.args[3], "heads") if len(e.args) > 3 else Size.const(1)
        causal = self.sizes.flag(e.args[4]) if len(e.args) > 4 else False
        for kw in e.kwargs:
            if kw.name == "heads":
                heads = self.sizes.positive(kw.value, "heads")
            elif kw.name == "causal":
                causal = self.sizes.flag(kw.value)
            else:
                raise SpecError(f"attention() has no argument '{kw.name}'", kw.span,
                                did_you_mean(kw.name, ["heads", "causal"]))
        return self.node(Op.ATTENTION, [q, k, v], e.span, self.root_name(is_root), heads=heads, causal=causal)

    def call_positions(self, e: A.Call, is_root: bool):
        (d,) = self.args(e, 1)
        if self.defn.kind == "cell":
            raise SpecError("positions() numbers the steps of a sequence; use it in a block or model", e.span)
        if not any(isinstance(s, A.InDecl) and s.type.kind in ("seq", "tokens") for s in self.defn.body):
            raise SpecError(f"positions() numbers the steps of a sequence input, but {self.defn.kind} "
                            f"{self.defn.name} has no sequence input", e.span,
                            "declare an input 'in x: seq[..]' (or tokens) whose steps it numbers")
        return self.leaf(Op.POSITIONS, self.root_name(is_root) or self.temp("pos"),
                         VType((self.sizes.positive(d),), True, "float", False), e.span)

    def call_split(self, e: A.Call, is_root: bool):
        raise SpecError("split() returns several values; assign them: a, b = split(x, 2)", e.span)

    def not_a_builtin(self, e: A.Call):
        f = e.func
        if f in ("zeros", "ones"):
            raise SpecError(f"'{f}' is an initial value; use it in a state declaration or a 'from' list", e.span)
        if self.resolve and self.resolve(f, None) is not None:
            raise SpecError(f"{f} is a {self.resolve(f, None).kind}; run it over a sequence: "
                            f"{f}(...) over x", e.span)
        known = list(FUNCTIONS) + list(BUILTIN_CALLS) + list(self.resolve("*", None) if self.resolve else [])
        raise SpecError(f"unknown function '{f}'", e.span, did_you_mean(f, known))

    def param_leaf(self, name: str, t: VType, span: Span, init) -> str:
        if name in self.g:
            raise SpecError(f"parameter '{name}' would be created twice", span)
        return self.leaf(Op.PARAM, name, t, span, init=init)

    # ---- statements ---------------------------------------------------------------
    def equation_value(self, name: str) -> str:
        """In a cell: the node of equation `name`, lowering it first if needed."""
        v = self.scope.get(name)
        if isinstance(v, State):
            if name not in self.lowered:
                if name not in self.equations:
                    raise SpecError(f"state '{name}' is never assigned", v.span,
                                    f"add an equation '{name} = ...' to the cell")
                self.lower_equation(name)
            return name
        if isinstance(v, Equation):
            if name not in self.lowered:
                self.lower_equation(name)
            return self.lowered[name]
        return v

    def lower_equation(self, name: str) -> None:
        if name in self.in_progress:
            raise algebraic_loop_error(self.in_progress, name, self.equations)
        self.in_progress.append(name)
        stmt = self.equations[name]
        saved = (self.target, self.root_of_stmt)
        self.target, self.root_of_stmt = name, name
        if len(stmt.targets) > 1:
            r = self.split_part(stmt, name, name)
        else:
            r = self.value(stmt.value, is_root=True)
        if r != name:
            r = self.node(Op.IDENTITY, [(r, 0)], stmt.value.span, name)
        self.target, self.root_of_stmt = saved
        if name in self.declared_types:
            t = self.g.nodes[r]["type"]
            if t != self.declared_types[name]:
                raise SpecError(f"state '{name}' is declared {self.declared_types[name]} but assigned {t}",
                                stmt.value.span)
            st = self.scope[name]
            self.g.nodes[r].update(state=True, init=st.init, decl=st.span)
        self.lowered[name] = r
        self.in_progress.pop()

    def split_source(self, s: A.Assign):
        """Lower the right side of `a, b = split(x, 2)` once; return (x node, part size)."""
        if s in self.splits:
            return self.splits[s]
        e = s.value
        if not (isinstance(e, A.Call) and e.func == "split"):
            raise SpecError(f"{len(s.targets)} names on the left need split(x, {len(s.targets)}) on the right",
                            s.span)
        x, n = self.args(e, 2)
        saved = self.target
        self.target = "_".join(s.targets)
        xv = self.value(x)
        self.target = saved
        t = self.g.nodes[xv]["type"]
        parts = self.sizes.positive(n, "number of parts")
        if parts.value != len(s.targets):
            raise SpecError(f"split into {parts} parts, but {len(s.targets)} names on the left", e.span)
        if t.rank != 1:
            raise SpecError(f"split() needs vectors, got {t}", x.span)
        part = t.dims[0].div_exact(parts.value)
        if part is None:
            raise SpecError(f"cannot split {t} into {parts.value} equal parts", e.span)
        self.splits[s] = (xv, part)
        return self.splits[s]

    def split_part(self, s: A.Assign, name: str, node_name: str) -> str:
        xv, part = self.split_source(s)
        i = s.targets.index(name)
        return self.node(Op.SLICE, [(xv, 0)], s.value.span, node_name,
                         start=part * Size.const(i), stop=part * Size.const(i + 1))

    def add_equation(self, name: str, s: A.Assign) -> None:
        if name in self.equations:
            raise SpecError(f"'{name}' is assigned twice (line {self.equations[name].span.line} "
                            f"and line {s.span.line})", s.span,
                            "a cell is a set of equations: each name is assigned once")
        v = self.scope.get(name)
        if v is not None and not isinstance(v, State):
            raise SpecError(f"cannot assign to {self.g.nodes[v]['op'].value} '{name}'", s.span)
        if name in self.env:
            raise SpecError(f"cannot assign to size '{name}'", s.span)
        self.equations[name] = s
        if v is None:
            self.scope[name] = Equation(name)
        self.used_names.add(name)

    def lower_cell(self, stmts) -> None:
        outs = []
        for s in stmts:
            if isinstance(s, A.Assign):
                if len(set(s.targets)) != len(s.targets):
                    raise SpecError("a name appears twice on the left of '='", s.span)
                for name in s.targets:
                    self.add_equation(name, s)
            elif isinstance(s, A.Out):
                outs.append(s)
            elif isinstance(s, A.Predict):
                self.predict.lower(s)
            elif isinstance(s, A.Repeat):
                raise SpecError("'repeat' stacks layers in models and blocks, not inside a cell", s.span)
        for name in self.equations:
            self.equation_value(name)
        for name, v in list(self.scope.items()):
            if isinstance(v, State) and name not in self.lowered:
                raise SpecError(f"state '{name}' is never assigned", v.span,
                                f"add an equation '{name} = ...' to the cell")
        seen = set()
        for o in outs:
            if o.name in seen:
                raise SpecError(f"output '{o.name}' is declared twice", o.span)
            seen.add(o.name)
            if o.value is not None:
                self.target, self.root_of_stmt = o.name, None
                src = self.value(o.value, is_root=True)
            else:
                src = self.equation_value(self.out_source(o))
            add_node(self.g, self.fresh(f"out_{o.name}"), Op.OUTPUT, self.g.nodes[src]["type"], o.span,
                     [(src, 0)], output=o.name)
        # delayed edges last: an output may read a state at t-k too (`out prev = h[t-1]`)
        for src, dst, port, delay in self.pending_delays:
            self.g.add_edge(src, dst, port=port, delay=delay)

    def out_source(self, o: A.Out) -> str:
        if o.name not in self.scope:
            raise SpecError(f"unknown name '{o.name}'", o.span, did_you_mean(o.name, self.scope))
        return o.name

    def lower_sequential(self, stmts, depth: int = 0) -> None:
        for s in stmts:
            if isinstance(s, A.Assign):
                self.assign(s)
            elif isinstance(s, A.Out):
                if s.name in self.outputs_seen:
                    raise SpecError(f"output '{s.name}' is declared twice", s.span)
                self.outputs_seen.add(s.name)
                if s.value is None:
                    src = self.value(A.Name(s.span, s.name))
                else:
                    self.target, self.root_of_stmt = s.name, None
                    src = self.value(s.value, is_root=True)
                add_node(self.g, self.fresh(f"out_{s.name}"), Op.OUTPUT, self.g.nodes[src]["type"], s.span,
                         [(src, 0)], output=s.name)
            elif isinstance(s, A.Predict):
                if s.name in self.outputs_seen:
                    raise SpecError(f"output '{s.name}' is declared twice", s.span)
                self.outputs_seen.add(s.name)
                self.predict.lower(s)
            elif isinstance(s, A.Repeat):
                if depth >= 4:
                    raise SpecError("repeat nests deeper than 4 levels", s.span)
                n = self.sizes.size(s.count, "repeat count")
                if n.value is None:
                    raise SpecError(f"repeat count {n} has no value", s.count.span,
                                    f"give it a default in the header or pass --set {n}=...")
                if not (0 < n.value <= MAX_REPEAT):
                    raise SpecError(f"repeat count must be between 1 and {MAX_REPEAT}, got {n.value}", s.count.span)
                saved = self.prefix
                for i in range(n.value):
                    self.prefix = f"{saved}layer{i}."
                    self.lower_sequential(s.body, depth + 1)
                self.prefix = saved

    def assign(self, s: A.Assign) -> None:
        for name, span in zip(s.targets, s.target_spans):
            v = self.scope.get(name)
            if name in self.env:
                raise SpecError(f"cannot assign to size '{name}'", span)
            if v is not None and not isinstance(v, RunHandle) and self.g.nodes[v]["op"] in (Op.INPUT, Op.PARAM):
                raise SpecError(f"cannot assign to {self.g.nodes[v]['op'].value} '{name}'", span)
        if len(set(s.targets)) != len(s.targets):
            raise SpecError("a name appears twice on the left of '='", s.span)
        self.target = "_".join(s.targets)
        if len(s.targets) > 1:
            for name in s.targets:
                self.scope[name] = self.split_part(s, name, self.fresh(name))
            return
        name = s.targets[0]
        self.root_of_stmt = None if isinstance(s.value, A.Run) else self.fresh(name)
        r = self.expr(s.value, is_root=True)
        if isinstance(r, RunHandle):
            self.scope[name] = r
            return
        if r != self.root_of_stmt:
            r = self.node(Op.IDENTITY, [(r, 0)], s.value.span, self.root_of_stmt)
        self.scope[name] = r

    def lower(self) -> nx.MultiDiGraph:
        self.lower_decls(self.defn.body)
        if self.defn.kind == "cell":
            self.lower_cell(self.defn.body)
            if not any(d["op"] == Op.INPUT for _, d in self.g.nodes(data=True)):
                raise SpecError(f"cell {self.defn.name} has no input, so it has no steps to run", self.defn.span,
                                "a cell runs once per step of its per-step input; declare one with 'in x: [..]' "
                                "(a model runs the cell over a sequence of them)")
        else:
            self.lower_sequential(self.defn.body)
            self.predict.finish()
        if not any(d["op"] == Op.OUTPUT for _, d in self.g.nodes(data=True)):
            raise SpecError(f"{self.defn.kind} {self.defn.name} has no output", self.defn.span,
                            "add a line 'out y = ...'")
        if self.warnings:
            self.g.graph["warnings"] = tuple(self.warnings)
        verify(self.g)
        return self.g


# the built-ins besides the elementwise FUNCTIONS, each lowered by its own method
BUILTIN_CALLS = {
    "clip": Lowerer.call_clip, "concat": Lowerer.call_concat, "linear": Lowerer.call_linear,
    "embed": Lowerer.call_embed, "onehot": Lowerer.call_onehot, "layernorm": Lowerer.call_layernorm,
    "attention": Lowerer.call_attention, "positions": Lowerer.call_positions, "split": Lowerer.call_split,
    "dropout": Lowerer.call_dropout,
}


ARITY_HINTS = {
    "min": "min(a, b) is elementwise: the smaller of a and b at each position",
    "max": "max(a, b) is elementwise: the larger of a and b at each position",
    "clip": "clip(x, lo, hi) limits x to [lo, hi], e.g. clip(x, -1, 1)",
    "mean": "mean(x) averages the features of a vector x",
    "dropout": "dropout(x, p) zeroes each number of x with probability p in training (and scales the rest by "
               "1/(1-p)); dropout(x, p, variational = true) keeps one mask for every step",
}


def _operand_text(node, default: str) -> str:
    """How an operand reads in a hint: its source text, bracketed unless it is a name, a call or an
    index (`W`, `tanh(c)`, `h[t-1]`, `(a + b)`)."""
    text = source_text(node) or default
    atom = isinstance(node, (A.Name, A.Call, A.Attr, A.Delay, A.Last, A.Num))
    return text if atom or text == default else f"({text})"


def _declared(stmt) -> list:
    """The names a statement declares or assigns."""
    if isinstance(stmt, (A.InDecl, A.MemDecl, A.StateDecl, A.Out, A.Predict)):
        return [stmt.name]
    if isinstance(stmt, A.ParamDecl):
        return [i.name for i in stmt.items]
    if isinstance(stmt, A.Assign):
        return list(stmt.targets)
    return []


def lower(defn: A.Definition, env: dict, resolve=None) -> nx.MultiDiGraph:
    for p in defn.params:
        check_identifier(p.name, p.span, "size name")
    return Lowerer(defn, env, resolve).lower()

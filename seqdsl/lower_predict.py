"""Lowering of predicted outputs: `out y ~ categorical(logits)`, `out y: [D] ~ normal(mean, std)`,
and the reads `y[t-1]` of a model's previous prediction.

In:  `ast.Predict` statements and `ast.Delay` reads of a predicted name, met while lowering a
     model (see seqdsl.lower); `PredictLowering` borrows its `Lowerer`'s graph and names.
Out: for a predicted `y`, an `output` node with `dist` ("categorical" or "normal") and, for
     normal, `std`; where the model reads `y[t-1]`, an `input` node `y` (the observed sequence:
     `seq<int>` for categorical, `seq[D]` for normal) and a `shift` node that reads it one step
     late, the start token (`vocab.START`) or zeros at the first step. Learning passes `y` like any
     input (teacher forcing); generation feeds back each step's choice (seqdsl.passes.split_steps).
"""

from __future__ import annotations

from . import ast as A
from .errors import SpecError
from .ir import add_node
from .ops import Op
from .types import VType
from .vocab import START

DISTRIBUTIONS = {"categorical": "categorical(logits): one of V classes, logits a [V] or seq[V] of "
                                "unnormalised log-probabilities",
                 "normal": "normal(mean, std): a real vector, std a positive number"}


class PredictLowering:
    """The predicted outputs of one model, for one `Lowerer` (`lw`)."""

    def __init__(self, lw):
        self.lw = lw
        self.decls = {s.name: s for s in lw.defn.body if isinstance(s, A.Predict)}
        self.observed: dict = {}  # y -> its observed input node (made by the first read of y[t-1])
        self.first_read: dict = {}  # y -> the span of that read
        self.made: dict = {}  # y -> (its statement, its distribution, the type of its logits or mean)
        for st in lw.defn.body:
            names = [st.name] if isinstance(st, A.InDecl) else list(st.targets) if isinstance(st, A.Assign) else []
            for n in names:
                if n in self.decls:
                    raise SpecError(f"'{n}' is predicted by 'out {n} ~ ...' and cannot also be "
                                    f"{'an input' if isinstance(st, A.InDecl) else 'assigned'}", st.span,
                                    f"in learning, the observed {n} is passed by name like an input; the model "
                                    f"reads the previous one as {n}[t-1]" if isinstance(st, A.InDecl) else None)

    def is_predicted(self, name: str) -> bool:
        return name in self.decls and name not in self.lw.scope

    def read_now(self, name: str, span) -> SpecError:
        """The error for reading a predicted `y` at step t (or bare)."""
        return SpecError(f"'{name}' is what the model predicts: its value at a step is only known once that step "
                         f"has predicted it", span,
                         f"read the previous prediction, {name}[t-1] (the start token at the first step)")

    def previous(self, e: A.Delay):
        """The node of `y[t-1]`: the observed `y` shifted one step late."""
        name, span = e.target.id, e.span
        decl = self.decls[name]
        if e.k != 1:
            raise SpecError(f"only the previous prediction can be read: {name}[t-1], not {name}[t-{e.k}]", span,
                            "to look further back, keep earlier predictions in a cell's states")
        if name not in self.observed:
            self.observed[name] = self.observed_input(decl, span)
            self.first_read[name] = span
        inp = self.observed[name]
        fill = float(START) if self.lw.g.nodes[inp]["type"].dtype == "int" else 0.0
        return self.lw.node(Op.SHIFT, [(inp, 0)], span, self.lw.fresh(f"{name}_prev"), fill=fill)

    def observed_input(self, decl: A.Predict, span) -> str:
        kind = self.dist_name(decl)
        if kind == "categorical":
            t = VType((), True, "int", True)
        else:
            if decl.type is None:
                raise SpecError(f"reading {decl.name}[t-1] needs {decl.name}'s size: a normal prediction is a "
                                "vector", span, f"declare it: out {decl.name}: [D] ~ normal(...)")
            t = self.lw.type_of(decl.type)
            if t.seq or t.rank != 1:
                raise SpecError(f"a normal prediction read at t-1 is one vector per step, [D]; got {t}",
                                decl.type.span, f"write out {decl.name}: [D] ~ normal(...)")
            t = VType(t.dims, True, "float", True)
        name = self.lw.fresh(decl.name)
        if name != decl.name:
            raise SpecError(f"'{decl.name}' is read at t-1 in its own prediction; read it through a value computed "
                            "before the 'out' line", span)
        return self.lw.leaf(Op.INPUT, name, t, decl.span, observed=True)

    def dist_name(self, s: A.Predict) -> str:
        d = s.dist
        if not isinstance(d, A.Call) or d.func not in DISTRIBUTIONS:
            got = f"'{d.func}'" if isinstance(d, A.Call) else "an expression"
            raise SpecError(f"'out {s.name} ~' takes a distribution, got {got}", d.span,
                            "; ".join(DISTRIBUTIONS.values()))
        return d.func

    def lower(self, s: A.Predict) -> None:
        lw = self.lw
        if lw.defn.kind != "model":
            raise SpecError(f"only a model predicts outputs; a {lw.defn.kind} writes 'out {s.name} = ...'", s.span)
        kind = self.dist_name(s)
        args = s.dist.args
        want = 1 if kind == "categorical" else 2
        if len(args) != want or s.dist.kwargs:
            raise SpecError(f"{kind}() takes {want} argument{'s' if want > 1 else ''}, got "
                            f"{len(args) + len(s.dist.kwargs)}", s.dist.span, DISTRIBUTIONS[kind])
        lw.target, lw.root_of_stmt = s.name, None
        src = lw.value(args[0], is_root=True)
        t = lw.g.nodes[src]["type"]
        what = "logits" if kind == "categorical" else "mean"
        if t.dtype == "int" or t.rank != 1 or not t.batched:
            raise SpecError(f"{kind}'s {what} must be a vector per sample or per step ([N] or seq[N]), got {t}",
                            args[0].span, "make it one with linear(x, N)")
        attrs = {"dist": kind}
        if kind == "categorical" and s.type is not None:
            raise SpecError("a categorical prediction's classes come from its logits; drop "
                            f"': {A.source_text(s.type)}'",
                            s.type.span, f"write out {s.name} ~ categorical(...)")
        if kind == "normal":
            std = lw.sizes.number(args[1], "normal's std", "normal(mean, std) takes a positive number as std, e.g. 1 "
                                  "or 0.1 (a learned std is not supported)")
            if std <= 0:
                raise SpecError(f"normal's std must be positive, got {std:g}", args[1].span)
            attrs["std"] = std
            if s.type is not None:
                declared = lw.type_of(s.type)
                if declared.seq or declared.dims != t.dims:
                    raise SpecError(f"'{s.name}' is declared {declared} but its mean is {t}", args[0].span)
        self.made[s.name] = (s, kind, t)
        add_node(lw.g, lw.fresh(f"out_{s.name}"), Op.OUTPUT, t, s.span, [(src, 0)], output=s.name, **attrs)

    def finish(self) -> None:
        """Once the whole model is lowered: each prediction read at t-1, before its 'out' line or after."""
        for name, (s, kind, t) in self.made.items():
            if name in self.observed:
                self.check_previous(s, kind, t)

    def check_previous(self, s: A.Predict, kind: str, t: VType) -> None:
        """A model that reads y[t-1] predicts y at every step, with as many classes as it reads."""
        if not t.seq:
            raise SpecError(f"'{s.name}' is predicted once per sample, so it has no previous step to read",
                            self.first_read[s.name], f"{s.name}[t-1] needs a prediction per step: a seq[N] of "
                            f"{'logits' if kind == 'categorical' else 'means'}")
        if kind != "categorical":
            return
        classes = t.dims[0]
        inp = self.observed[s.name]
        g = self.lw.g
        for shift in g.successors(inp):
            for reader in g.successors(shift):
                d = g.nodes[reader]
                if d["op"] == Op.EMBED:
                    table = next(u for u, _, k in g.in_edges(reader, keys=True) if g.edges[u, reader, k]["port"] == 1)
                    vocab = g.nodes[table]["type"].dims[0]
                elif d["op"] == Op.ONEHOT:
                    vocab = d["size"]
                else:
                    continue
                if vocab.value != classes.value or (vocab.value is None and str(vocab) != str(classes)):
                    raise SpecError(f"'{s.name}' has {classes} classes (its logits) but {s.name}[t-1] is read with a "
                                    f"vocabulary of {vocab}", d["span"],
                                    "the vocabulary that reads the previous prediction must be the one it is "
                                    "predicted from")

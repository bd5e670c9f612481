"""Lowering of model wiring: runs of cells and blocks, their fields, `over`, `from` and `attend`.

In:  `ast.Run` / `ast.Attr` nodes met while lowering a model (see seqdsl.lower). `over`, `from`
     and `attend` take one value, or a `KwargList` giving the callee's inputs, states or
     memories by name (each once; one value only when the callee has exactly one).
Out: `call` and `get` IR nodes, made by `RunLowering`, which a `Lowerer` holds and lends its
     graph, names and expressions to; `interface_of(defn, graph)`, the `Interface` a model
     sees of a lowered cell or block.
"""

from __future__ import annotations

from . import ast as A
from .ast import source_text
from .errors import Span, SpecError, did_you_mean
from .ir import add_node, interface
from .lower_values import Interface, RunHandle
from .ops import Op
from .size_exprs import SizeScope, symbolic_env


class RunLowering:
    """Lowers a model's runs and the fields read from them, for one `Lowerer` (`lw`)."""

    def __init__(self, lw):
        self.lw = lw

    def run(self, e: A.Run, is_root: bool):
        if self.lw.defn.kind != "model":
            raise SpecError(f"'over' runs a cell or block; runs belong in models, not in a {self.lw.defn.kind}",
                            e.span)
        callee = e.call.func
        iface = self.lw.resolve(callee, e.call.span) if self.lw.resolve else None
        if iface is None:
            known = list(self.lw.resolve("*", None)) if self.lw.resolve else []
            raise SpecError(f"unknown cell or block '{callee}'", e.call.span, did_you_mean(callee, known))
        if iface.kind == "model":
            raise SpecError(f"{callee} is a model; only cells and blocks can be run", e.call.span)
        env = self.callee_env(iface, e.call)
        inst = self.lw.instance(callee.lower(), is_root)
        if iface.kind == "block" and (e.from_ is not None or e.attend is not None or e.reversed
                                      or e.bidirectional):
            raise SpecError("from/attend/reversed/bidirectional apply to cells; a block sees the whole sequence",
                            e.span)
        inputs = self.over_inputs(e, iface, env)
        over_t = self.lw.g.nodes[inputs[0][0]]["type"]
        if e.from_ is not None:
            inputs += self.from_inputs(e, iface, env)
        if e.attend is not None:
            if not iface.memories:
                raise SpecError(f"{callee} declares no memory to attend to", e.attend.span,
                                "declare 'memory m: seq[H]' in the cell")
            inputs += self.named_values(e.attend, iface.memories, env, iface, "memory", "attend")
        elif iface.memories:
            names = list(iface.memories)
            if len(names) == 1:
                raise SpecError(f"{callee} has a memory; give it one: ... attend enc.y", e.span)
            raise SpecError(f"{callee} has {_count(names, 'memory', 'memories')}; give them: "
                            f"... attend {_example(names, '...')}", e.span)
        first_out = next(iter(iface.outputs.values())) if iface.outputs else None
        t = first_out.subs(env) if first_out else over_t
        if iface.kind == "cell":
            t = t.with_(seq=True)
        attrs = dict(callee=callee, kind=iface.kind, sizes=env)
        if e.bidirectional:
            calls = []
            for direction, rev in (("fwd", False), ("bwd", True)):
                n = add_node(self.lw.g, self.lw.fresh(f"{inst}.{direction}".replace(".", "_")), Op.CALL, t, e.span,
                             inputs, instance=f"{inst}.{direction}", reverse=rev, **attrs)
                calls.append(n)
        else:
            n = add_node(self.lw.g, self.lw.fresh(inst.replace(".", "_")), Op.CALL, t, e.span, inputs, instance=inst,
                         reverse=bool(e.reversed), **attrs)
            calls = [n]
        return RunHandle(calls, iface, env, e.span)

    def over_inputs(self, e: A.Run, iface: Interface, env: dict) -> list:
        """The run's per-step inputs as (node, 0, input name): `over x`, or `over (x = .., mask = ..)`."""
        return self.named_values(e.over, iface.inputs, env, iface, "input", "over")

    def named_values(self, src, want: dict, env: dict, iface: Interface, what: str, keyword: str) -> list:
        """Values for the callee's inputs or memories (`want`: name → type in its sizes), from one
        expression (when it has exactly one) or a list `(name = expr, ...)` naming each once."""
        plural = "memories" if what == "memory" else what + "s"
        if isinstance(src, A.KwargList):
            given = {}
            for kw in src:
                if kw.name not in want:
                    raise SpecError(f"{iface.name} has no {what} '{kw.name}'", kw.span,
                                    did_you_mean(kw.name, want) or f"its {plural}: {', '.join(want)}")
                if kw.name in given:
                    raise SpecError(f"{what} '{kw.name}' is given twice", kw.span, f"name each {what} once")
                given[kw.name] = kw
            missing = [n for n in want if n not in given]
            if missing:
                raise SpecError(f"{iface.name} needs a value for its {what} "
                                f"{', '.join(repr(n) for n in missing)}", src.span,
                                f"write {keyword} {_example(list(want), '...')}")
            items = [(n, given[n].value) for n in want]
        elif not want:
            raise SpecError(f"{iface.name} has no {what} to take this", src.span)
        elif len(want) != 1:
            raise SpecError(f"{iface.name} has {_count(list(want), what, plural)}; name each one", src.span,
                            f"write {keyword} {_example(list(want), '...')}")
        else:
            items = [(next(iter(want)), src)]
        out = []
        for name, expr in items:
            v = self.lw.value(expr)
            t = self.lw.g.nodes[v]["type"]
            need = want[name].subs(env)
            if iface.kind == "cell" and what == "input":
                need = need.with_(seq=True)
            if t != need:
                role = "" if len(want) == 1 else f" (its {what} '{name}')"
                verb = "runs over" if what == "input" else "attends to"
                raise SpecError(f"{iface.name} {verb} {need}{role}, but this is {t}", expr.span)
            out.append((v, 0, name))
        return out

    def callee_env(self, iface: Interface, call: A.Call) -> dict:
        if len(call.args) > len(iface.size_params):
            raise SpecError(f"{iface.name} takes {len(iface.size_params)} sizes "
                            f"({', '.join(iface.size_params)}), got {len(call.args)}", call.span)
        given = {}
        for p, a in zip(iface.size_params, call.args):
            given[p] = a
        for kw in call.kwargs:
            if kw.name not in iface.size_params:
                raise SpecError(f"{iface.name} has no size '{kw.name}'", kw.span,
                                did_you_mean(kw.name, iface.size_params))
            if kw.name in given:
                raise SpecError(f"size '{kw.name}' given twice", kw.span)
            given[kw.name] = kw.value
        env = {}
        for p in iface.size_params:
            if p in given:
                a = given[p]
                d = iface.defaults.get(p)
                env[p] = self.lw.sizes.flag(a) if isinstance(d, bool) else self.lw.sizes.positive(a)
            elif p in iface.defaults and iface.defaults[p] is not None:
                d = iface.defaults[p]
                env[p] = d if isinstance(d, bool) else d.subs(env)
            else:
                raise SpecError(f"{iface.name} needs a value for its size '{p}'", call.span,
                                f"write {iface.name}({', '.join(iface.size_params)})")
        return env

    def from_inputs(self, e: A.Run, iface: Interface, env: dict) -> list:
        src = e.from_
        out = []
        if isinstance(src, A.KwargList):
            seen = set()
            for kw in src:
                if kw.name not in iface.states:
                    raise SpecError(f"{iface.name} has no state '{kw.name}'", kw.span,
                                    did_you_mean(kw.name, iface.states))
                if kw.name in seen:
                    raise SpecError(f"state '{kw.name}' is given twice", kw.span, "name each state once")
                seen.add(kw.name)
                if isinstance(kw.value, A.Name) and kw.value.id == "zeros":
                    continue
                v = self.lw.value(kw.value)
                want = iface.states[kw.name].subs(env)
                if self.lw.g.nodes[v]["type"] != want:
                    raise SpecError(f"state '{kw.name}' of {iface.name} is {want}, but this is "
                                    f"{self.lw.g.nodes[v]['type']}", kw.value.span)
                out.append((v, 0, kw.name))
            return out
        if not (isinstance(src, A.Attr) and src.name == "final"):
            raise SpecError("'from' takes another run's final states (enc.final) or a list (h = ..., c = ...)",
                            src.span)
        other = self.lw.expr(src.target)
        if not isinstance(other, RunHandle):
            raise SpecError("'.final' is read from a run", src.span)
        if len(other.calls) != 1:
            raise SpecError("a bidirectional run has two final states; pass them with from (h = ...)", src.span)
        shared = [s for s in iface.states if s in other.iface.states]
        run = source_text(src.target) or "enc"
        # a forward run's final state is its state at the last step; a reversed run ends at the first
        at_last = not self.lw.g.nodes[other.calls[0]]["reverse"]
        by_name = "from (" + ", ".join(f"{s} = {f'{run}.{s}[last]' if at_last else '...'}" for s in shared) + ")"
        for s, t in iface.states.items():
            if s not in other.iface.states:
                raise SpecError(f"{other.iface.name} has no state '{s}' to start {iface.name} from", src.span,
                                f"{other.iface.name} ends with {_names(other.iface.states)}; start the states "
                                f"they share by name, {by_name}, and the others start at their initial values")
            v = self.field(other, f"final.{s}", src.span)
            want = t.subs(env)
            if self.lw.g.nodes[v]["type"] != want:
                raise SpecError(f"state '{s}': {iface.name} needs {want}, {other.iface.name} ends with "
                                f"{self.lw.g.nodes[v]['type']}", src.span)
            out.append((v, 0, s))
        self.unused_final(iface, other.iface, shared, src.span, by_name)
        return out

    def unused_final(self, iface: Interface, other: Interface, shared: list, span: Span, by_name: str) -> None:
        """The warning for `from enc.final` when `enc` ends with states the run has not (an LSTM's c
        for a GRU): which states start it, which are dropped."""
        unused = [s for s in other.states if s not in iface.states]
        if not unused:
            return
        verb = "is" if len(unused) == 1 else "are"
        if not shared:
            self.lw.warnings.append((f"{iface.name} has no states, so {other.name}'s final {_names(unused)} "
                                     f"{verb} not used", span, "remove 'from ...'"))
            return
        self.lw.warnings.append((
            f"{iface.name} starts from {other.name}'s final {_names(shared)}; {other.name}'s final "
            f"{_names(unused)} {verb} not used", span,
            f"{iface.name} has no state {_names(unused, ' or ')}; to start from {_names(shared)} alone without "
            f"this warning, name {'it' if len(shared) == 1 else 'them'}: {by_name}"))

    def default_output(self, h: RunHandle, span: Span) -> str:
        if not h.iface.outputs:
            raise SpecError(f"{h.iface.name} has no output", span)
        return self.field(h, next(iter(h.iface.outputs)), span)

    def field(self, h: RunHandle, fieldname: str, span: Span) -> str:
        if fieldname in h.cache:
            return h.cache[fieldname]
        iface = h.iface
        base = fieldname.split(".", 1)[-1]
        if fieldname.startswith("final."):
            t = iface.states[base].subs(h.env)
        elif base in iface.outputs:
            t = iface.outputs[base].subs(h.env)
            if iface.kind == "cell":  # one value per step of every sequence, even one of parameters alone
                t = t.with_(seq=True, batched=True)
        elif base in iface.states:
            t = iface.states[base].subs(h.env).with_(seq=True)
        else:
            fields = list(iface.outputs) + list(iface.states) + (["final"] if iface.states else [])
            raise SpecError(f"{iface.name} has no output or state '{base}'", span, did_you_mean(base, fields))
        parts = []
        for c in h.calls:
            parts.append(add_node(self.lw.g, self.lw.fresh(f"{c}_{fieldname.replace('.', '_')}"), Op.GET, t, span,
                                  [(c, 0)], field=fieldname))
        if len(parts) == 2:
            r = self.lw.node(Op.CONCAT, [(p, 0) for p in parts], span, self.lw.fresh(f"{h.calls[0]}_{base}"))
        else:
            r = parts[0]
        h.cache[fieldname] = r
        return r

    def attr(self, e: A.Attr):
        target = self.lw.expr(e.target)
        if not isinstance(target, RunHandle):
            raise SpecError(f"'.{e.name}' reads a field of a run (enc.y, enc.h, enc.final)", e.span)
        if e.name == "final":
            raise SpecError("'.final' is a set of states; start another run from it: ... from enc.final",
                            e.span, "read one final state as enc.h[last]")
        return self.field(target, e.name, e.span)


def _names(names, last: str = " and ") -> str:
    """`h`, `h and c`, `h, c and n` (`last`: the word before the last name)."""
    names = list(names)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + last + names[-1]


def _count(names: list, one: str, many: str) -> str:
    """`2 inputs (x, mask)`."""
    return f"{len(names)} {one if len(names) == 1 else many} ({', '.join(names)})"


def _example(names: list, value: str) -> str:
    """`(x = ..., mask = ...)`, or the bare value for one name."""
    if len(names) == 1:
        return value
    return "(" + ", ".join(f"{n} = ..." for n in names) + ")"


def interface_of(defn: A.Definition, g) -> Interface:
    """What a model needs to know of a lowered cell or block (types in its own size names)."""
    iface = interface(g)
    defaults = {}
    own = SizeScope(defn, symbolic_env(defn))
    for p in defn.params:
        if isinstance(p.default, A.Bool):
            defaults[p.name] = p.default.value
        elif p.default is not None:
            defaults[p.name] = own.size(p.default)
        else:
            defaults[p.name] = None
    return Interface(defn.kind, defn.name, [p.name for p in defn.params], defaults, iface["inputs"],
                     iface["states"], iface["memories"], iface["outputs"], defn.span)



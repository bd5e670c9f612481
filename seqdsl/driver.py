"""The compile driver: specialise → passes → recognise → schedule → emit, for the API and the CLI.

In:  a spec (a path, spec text or a loaded `Program`), a backend name, sizes, the definition to
     compile, a dtype, and whether standard cells may run on a vendor kernel (`fused`).
Out: `plan(program, name, sizes, emitter, fused)` → `Plan`: every definition the compiled one
     uses, once per set of sizes, callees first, each a `Unit` holding its specialised IR, its
     optimised IR (the shared pipeline plus the backend's own passes), the standard cell it is
     when the backend has a kernel for it (`analysis.recognize`), its schedules (forward, and
     the gradient's when the backend generates one) and the variable names of its values.
     `generate_source(...)` → (program, definition, module text): the plan printed by
     `backends.codegen`. `compile_program(...)` → an executable (NumPy) or an nn.Module
     (torch), docs/api.md. Both `seqdsl.compile` and `seqdsl compile` come through here.

The emitters only print what the plan says: no pass, recognition or scheduling happens in
code generation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from .analysis.recognize import recognize
from .analysis.time_axes import callee_axes, output_axes
from .backends import DTYPES, dim_names, emitter_for, loaded_sizes
from .backends.codegen import Codegen, reserved_names
from .backends.value_names import variable_names
from .backends.vocab import token_vocab
from .errors import SpecError, did_you_mean
from .ir import states
from .ops import Op
from .passes import optimize
from .passes.dropout import with_dropout, without_dropout
from .passes.given_states import given_states
from .passes.last_state import last_state
from .passes.mask_lengths import mask_lengths
from .passes.split_steps import split_steps
from .schedule import schedule_cell
from .sizes import Size


@dataclass
class Unit:
    """One generated function: a definition specialised to concrete sizes."""

    stem: str  # `cell_LSTM__I_8__H_16`: kind, definition, then `__<size>_<value>` per size
    defn: str
    kind: str  # "cell" | "block" | "model"
    graph: object  # the optimised IR
    sizes: dict
    source: object = None  # the specialised IR before the passes
    standard: object = None  # an `analysis.recognize.Standard` when the backend runs it on a kernel
    schedule: object = None  # a cell's forward `CellSchedule`
    grad_schedule: object = None  # a cell's gradient `CellSchedule` (backends that generate one)
    names: dict = field(default_factory=dict)  # node -> variable (`codegen.variable_names`)

    @property
    def fname(self) -> str:
        return self.stem if "__" in self.stem else self.stem + "__"

    def twin(self, variant: str) -> str:
        """The name of its `grad` or `loop` twin: `cell_A__H_1__grad`, `cell_A__grad`."""
        return f"{self.stem}__{variant}"

    def loop(self) -> Unit:
        """The generated loop of a unit that runs on a kernel (the kernel falls back to it)."""
        return replace(self, stem=self.twin("loop"), standard=None)


@dataclass
class Plan:
    """The units a compiled definition needs; `main` is the definition itself."""

    main: Unit
    units: list  # callees before callers
    calls: dict  # (definition, sizes as given) -> Unit
    cache_once: bool = False  # (generation's step module) cells keep what they compute once in `_CACHE`

    def callee(self, d: dict) -> Unit:
        """The unit a `call` node runs."""
        return self.calls[_key(d["callee"], d["sizes"])]


def _concrete(v):
    return v.value if isinstance(v, Size) else v


def _key(name: str, sizes: dict) -> tuple:
    return name, tuple(sorted((k, _concrete(v)) for k, v in sizes.items()))


def _size_text(v) -> str:
    """A size's value in a function name: `16`, `True`, `m1` for -1 (letters and digits only)."""
    v = _concrete(v)
    if isinstance(v, int) and not isinstance(v, bool):
        return str(v) if v >= 0 else f"m{-v}"
    return re.sub(r"[^0-9A-Za-z]", "", str(v)) or "x"


def plan(program, name: str, sizes: dict, em, fused: bool = True, masked: bool = False,
         training: bool = False, part: str | None = None, states: tuple = ()) -> Plan:
    """Every unit `name` needs at `sizes`, each specialised, optimised, recognised and scheduled
    for the backend `em` (a `codegen.Emitter`). `masked`: every unit runs on padded batches
    with per-sample lengths (`passes.mask_lengths`; the masks are hidden inputs); `training`:
    dropout multiplies by masks the runtime draws (`passes.dropout`), else it is the identity;
    `part` ("begin" or "step"): the main definition is that part of a model that generates step by
    step (`passes.split_steps`); `states`: the run states `<instance>.<state>` of a model the caller
    gives, which become inputs (`passes.given_states`)."""
    units: dict = {}  # specialised key -> Unit
    calls: dict = {}
    order: list = []
    reserved = reserved_names(em)
    variant = _Variant(program, masked, training, part, _key(name, sizes), tuple(states))

    def visit(defn: str, given: dict) -> Unit:
        key = _key(defn, given)
        if key in calls:
            return calls[key]
        g = program.specialize(defn, {k: _concrete(v) for k, v in given.items()})
        if key == variant.root:
            g = variant.root_graph(g)
        skey = _key(defn, g.graph["sizes"])
        if skey not in units:
            units[skey] = _unit(g, defn, em, fused, reserved, variant(defn, given), part == "step")
            for _, d in units[skey].graph.nodes(data=True):
                if d["op"] == Op.CALL:
                    visit(d["callee"], d["sizes"])
            order.append(units[skey])
        calls[key] = units[skey]
        return units[skey]

    main = visit(name, sizes)
    return Plan(main, order, calls, cache_once=part == "step")


class _Variant:
    """definition, sizes → the graph that is compiled: dropout made the identity or (`training`) a
    product with drawn masks, then (`masked`) masked for lengths; callees first, each once."""

    def __init__(self, program, masked: bool, training: bool, part=None, root=None, given=()):
        self.program, self.masked, self.training = program, masked, training
        self.part, self.root, self.given = part, root, given
        self.memo: dict = {}

    def states_of(self, d) -> dict:
        """{state: (type, declared initial value)} of the cell a call node runs."""
        cg = self.program.specialize(d["callee"], {k: _concrete(v) for k, v in d["sizes"].items()})
        return {s: (cg.nodes[s]["type"], cg.nodes[s]["init"]) for s in states(cg)}

    def deepest(self, d):
        """(state, k) for the state the cell a call node runs reads furthest back, when k > 1; else None."""
        cg = self.program.specialize(d["callee"], {k: _concrete(v) for k, v in d["sizes"].items()})
        reads = [(k, u) for u, _, k in cg.edges(data="delay") if k and k > 1]
        return max(reads)[::-1] if reads else None

    def root_graph(self, g):
        """The main definition `g` as compiled: its begin or step part (passes.split_steps), its
        given run states made inputs (passes.given_states)."""
        if self.part:
            g = split_steps(g, self.part, self.states_of, self.deepest)
        if self.given:
            g = given_states(g, self.given, self.states_of)
        return g

    def __call__(self, defn: str, given: dict):
        key = _key(defn, given)
        if key not in self.memo:
            g = self.program.specialize(defn, {k: _concrete(v) for k, v in given.items()})
            if key == self.root:
                g = self.root_graph(g)
            callee = lambda d: self.info(self(d["callee"], d["sizes"]))  # noqa: E731
            g = with_dropout(g, callee) if self.training else without_dropout(g)
            g = last_state(g, self.states_of) if g.graph["kind"] == "model" else g
            g = mask_lengths(g, callee) if self.masked else g
            g.graph.setdefault("output_axes", output_axes(g, callee))
            self.memo[key] = g
        return self.memo[key]

    @staticmethod
    def info(vg) -> dict:
        """What a caller needs of a callee's graph: its masks, dropout masks, axes and inputs."""
        masks, drops = vg.graph.get("masks", {}), vg.graph.get("dropouts", {})
        return {"masks": masks, "dropouts": drops, "types": {n: vg.nodes[n]["type"] for n in drops},
                "unzeroed": vg.graph.get("unzeroed", []), **callee_axes(vg)}


def _unit(g, defn: str, em, fused: bool, reserved, compiled, step: bool = False) -> Unit:
    """`g` specialised; `compiled` the graph of the variant compiled (`_Variant`), before the passes;
    `step`: a unit of generation's step module (the backend's `step_passes` run first)."""
    # definition and size names are identifiers without "__", so the "__" before each size
    # keeps `A(H = 1)` (`cell_A__H_1`) apart from `A_H1()` (`cell_A_H1__`)
    kind = g.graph["kind"]
    stem = f"{kind}_{defn}" + "".join(f"__{k}_{_size_text(v)}" for k, v in g.graph["sizes"].items())
    og = optimize(compiled, extra=em.passes, early=em.step_passes if step else ())
    u = Unit(stem, defn, kind, og, g.graph["sizes"], source=g, names=variable_names(og, reserved))
    if fused and em.fused_cell is not None:
        u.standard = recognize(g)
    if kind == "cell":
        plan_memory = em.into and em.empty
        u.schedule = schedule_cell(og, can_into=(lambda n: em.writes_into(og, n)) if plan_memory else None,
                                   pre_transpose=bool(em.pre_transpose))
        if em.grad:
            u.grad_schedule = schedule_cell(og, grad=True, pre_transpose=bool(em.pre_transpose))
    return u


# ---- the API and the CLI ---------------------------------------------------------------

def _program(source, sizes):
    from .program import Program, load

    if isinstance(source, Program):
        return source, source.top_file
    program = load(source, sizes)
    return program, program.top_file


def _definition(program, name):
    if name is not None and not isinstance(name, str):
        raise SpecError(f"the argument name must be a definition name (a str), got {type(name).__name__} {name!r}",
                        None, "pass name=\"RNN\", or leave it out for the file's main definition")
    if name is None:
        return program.main
    if name in program.definitions:
        return program.definitions[name]
    raise SpecError(f"no definition named '{name}'", None, did_you_mean(name, program.definitions))


def _given(program, defn, sizes) -> dict:
    return {**loaded_sizes(program, defn), **{k: v for k, v in (sizes or {}).items() if k in defn.sizes}}


def generate(source, backend: str = "numpy", sizes=None, name=None, dtype: str = "float32", fused: bool = True,
             masked: bool = False, training: bool = False, part: str | None = None, states: tuple = ()):
    """(program, definition, plan, generated module text); `masked`: the module that takes
    lengths (its `MASKS` say which hidden inputs the runtime makes from them); `training`: the
    module in which dropout drops (its `DROPOUTS` say which masks the runtime draws); `part`:
    "begin" or "step", the modules generation runs (`passes.split_steps`); `states`: a model's run
    states the caller gives (`passes.given_states`)."""
    if dtype not in DTYPES:
        raise SpecError(f"unknown dtype '{dtype}'", None, f"choose one of: {', '.join(DTYPES)}")
    em = emitter_for(backend)
    program, file = _program(source, sizes)
    defn = _definition(program, name)
    p = plan(program, defn.name, _given(program, defn, sizes), em, fused, masked, training, part, states)
    code = Codegen(program, p, em, dtype).module(Path(file).name if file else "<string>")
    return program, defn, p, code


def generate_source(source, backend: str = "numpy", sizes=None, name=None, dtype: str = "float32",
                    fused: bool = True):
    """(program, definition, generated module text). `fused=False` keeps standard cells on the
    generated loop instead of a vendor kernel (torch backend)."""
    program, defn, _, code = generate(source, backend, sizes, name, dtype, fused)
    return program, defn, code


def compile_program(source, backend="numpy", sizes=None, name=None, dtype="float32", fused=True, **options):
    from .backends.runtime import NumpyExecutable, exec_module

    if options:
        raise SpecError(f"unknown compile option(s): {', '.join(sorted(options))}", None,
                        "options are backend, sizes, name, dtype and fused")
    program, defn, p, code = generate(source, backend, sizes, name, dtype, fused)
    filename = f"<seqdsl:{Path(program.top_file).name}:{defn.name}:{backend}>"
    ns = exec_module(code, filename)
    symbols = dim_names(defn)
    symbols["vocab"] = {n: token_vocab(program, p.main.source, n) for n, (*_, dtype, _seq, _v) in ns["INPUTS"].items()
                        if dtype == "int"}

    def variant(masked: bool, training: bool, part=None, states=()) -> tuple:  # a module for lengths=,
        # dropout, generation or given run states, made on first use
        tag = ":".join(t for t, on in (("lengths", masked), ("training", training), (part, part),
                                       ("state=" + ",".join(states), states)) if on)
        code = generate(program, backend, sizes, defn.name, dtype, fused, masked, training, part, states)[3]
        return code, f"{filename[:-1]}:{tag}>"

    if backend == "numpy":
        return NumpyExecutable(code, ns, filename, symbols, variant)
    from .backends.torch_module import make_module

    return make_module(code, ns, filename, symbols, variant)

"""Spec names never reach the names generated code makes for itself (codegen's naming rule).

A parameter, value, state, input, output, memory, run or definition may be named like anything
the generated code of either backend uses or used: its arguments and locals (`reverse`, `pre`,
`init`, `seqs`, `G`, `ts`, `i_`, ...), its globals (`DTYPE`, `PARAMS`, `forward`, ...), its
helpers without their underscore (`mm`, `full`, ...), and the shapes of the names it makes per
value (`g_h` a gradient, `gB_h`, `gT_h`, `h_d1`, `W_T`, `x_in`, `cell_Tiny_I2_H4`, ...). Each name
either fails to load with a SpecError pointing at it, or every compile path (NumPy inference
and value_and_grad, torch fused and unfused, with and without the passes) agrees with the
interpreter: `differential.check_all_paths`.

Names are checked many at a time: one model runs a cell per role, each holding a half of the
names in that role, and a block and the model itself hold them too; the other half goes through
a second model, with the roles that share the model's scope swapped.
"""

from __future__ import annotations

import ast
import builtins
import re

import numpy as np
import pytest
from conftest import ROOT
from differential import _check_torch, _close_dicts, check_all_paths

import seqdsl
from seqdsl import interpret
from seqdsl.errors import SpecError

torch = pytest.importorskip("torch")

# every argument, local and global the generated code uses or used, and the shapes of the names
# it makes per value; none contains "__" (the loader refuses those: test_double_underscore)
NAMES = [
    # arguments and locals of generated functions, their backward closures, the fused wrapper
    "reverse", "pre", "init", "seqs", "memory_", "P_", "G", "ts", "i_", "x_in", "d_outs", "d_seqs", "d_final",
    "backward", "bwd", "w_ih", "h0",
    # module globals
    "DTYPE", "KIND", "NAME", "SIZES", "PARAMS", "INPUTS", "OUTPUTS", "STATES", "STATE_SHAPES", "MEMORIES",
    "forward", "forward_grad",
    # helpers without their underscore
    "full", "empty", "sigmoid", "sigtanh", "mm", "softmax", "layernorm", "onehot", "positions", "attention",
    "sigtanh_bwd", "add_opt", "sum_to", "put_last", "embed_bwd", "layernorm_bwd", "attention_bwd", "bias",
    # the shapes of per-value names (of `h` and `W`, which the cells below have): gradients,
    # buffers, delays, transposes, parts, tapes, cotangents; of per-definition function names
    "g_h", "gB_h", "gT_h", "gO_h", "g_init_h", "d_y", "h_d1", "W_T", "h_tape", "h_buf", "h_seq", "h_steps",
    "h_parts", "cell_Tiny_I2_H4", "cell_Params_I2_H4", "block_Blk_H4",
    # refused by the checker (the generated code keeps t, B, T, np, torch, F plain)
    "t", "B", "T", "np", "torch", "F", "P", "inputs", "range", "list", "ValueError",
]
SIZES = "I = 2, H = 4"


def _word_at(text: str, e: SpecError):
    line = text.split("\n")[e.line - 1] if e.line >= 1 else ""
    m = re.match(r"[A-Za-z_]\w*", line[max(e.col - 1, 0):])
    return m.group(0) if m else None


def _refused_at(text: str, name: str) -> bool:
    """Does `text` fail to load? If so, the error must point at `name`."""
    try:
        seqdsl.load(text)
        return False
    except SpecError as e:
        assert _word_at(text, e) == name, f"{name!r} refused at the wrong place: {e}"
        return True


# ---- the spec: one cell per role, a block and a model --------------------------------------

def _cell(name, body, ins="in x: [I]", states="state h: [H]"):
    return "\n".join([f"cell {name}({SIZES}) {{", f"    {ins}", f"    {states}", *("    " + b for b in body), "}"])


def params_cell(names):
    """Parameters read as a matrix of the input, of the state (in the loop), a gate and a bias."""
    decl, body, prev = ["param U: [H, H]"], [], "U @ h[t-1]"
    for i, n in enumerate(names):
        shape, term = [("[H, I]", f"{n} @ x"), ("[H, H]", f"{n} @ h[t-1]"), ("[H]", f"{n} * h[t-1]"),
                       ("[H]", n)][i % 4]
        decl.append(f"param {n}: {shape}")
        body.append(f"p{i} = tanh({prev} + {term})")
        prev = f"p{i}"
    return _cell("Params", decl + body + [f"h = {prev}", "out y = h"])


def values_cell(names):
    """Values computed once (from parameters), for all steps (from the input) and per step,
    two of them from one split."""
    k = len(names) // 3
    once, time, step = names[:k], names[k:2 * k], names[2 * k:]
    body = ["param W: [H, I]", "param U: [H, H]", "param V: [2*H, I]"]
    prev = "W"
    for i, n in enumerate(once):
        body.append(f"{n} = {['tanh', 'sigmoid'][i % 2]}({prev}) * 0.5 + W")
        prev = n
    cur = f"{prev} @ x"
    for i, n in enumerate(time):
        body.append(f"{n} = {[f'tanh({cur})', f'sigmoid({cur}) + {cur}', f'{cur} * 0.5'][i % 3]}")
        cur = n
    if len(step) >= 2:
        a, b = step[:2]
        step = step[2:]
        body.append(f"{a}, {b} = split(V @ x + concat(h[t-1], h[t-1]), 2)")
        cur = f"{cur} + {a} * {b}"
    cur = f"{cur} + U @ h[t-1]"
    for i, n in enumerate(step):
        body.append(f"{n} = {[f'tanh({cur})', f'sigmoid({cur}) * {cur}', f'{cur} + 0.5 * h[t-1]'][i % 3]}")
        cur = n
    return _cell("Values", body + [f"h = tanh({cur})", "out y = h"])


def states_cell(names):
    """States read one step back (every third two steps back), half with an initial value."""
    decl = ["param W: [H, I]", "param U: [H, H]"] + [
        f"state {n}: [H]" + (" = 0.5" if i % 2 else "") for i, n in enumerate(names)]
    body, prev = [], "h[t-1]"
    for i, n in enumerate(names):
        body.append(f"{n} = tanh(W @ x + U @ {n}[t-{2 if i % 3 == 2 else 1}] + 0.5 * {prev})")
        prev = n
    return _cell("States", decl + body + [f"h = tanh({prev} + h[t-1])", "out y = h"])


def inputs_cell(names):
    body, prev = ["param W: [H, I]", "param U: [H, H]"], "U @ h[t-1]"
    for i, n in enumerate(names):
        body.append(f"q{i} = tanh({prev} + W @ {n})")
        prev = f"q{i}"
    return _cell("Inputs", body + [f"h = {prev}", "out y = h"], ins="\n    ".join(f"in {n}: [I]" for n in names))


def outputs_cell(names):
    body = ["param W: [H, I]", "param U: [H, H]", "h = tanh(W @ x + U @ h[t-1])"]
    body += [f"out {n} = " + ["h", "tanh(h)", "h[t-1]", "h * 0.5 + h[t-1]"][i % 4] for i, n in enumerate(names)]
    return _cell("Outputs", body)


def memories_cell(names):
    decl = ["param W: [H, I]", "param U: [H, H]"] + [f"memory {n}: seq[H]" for n in names]
    body, prev = [], "W @ x"
    for i, n in enumerate(names):
        body.append(f"m{i} = {prev} + sum(softmax({n} @ h[t-1]) * {n})")
        prev = f"m{i}"
    return _cell("Memories", decl + body + [f"h = tanh({prev} + U @ h[t-1])", "out y = h"])


def tiny_cell(name="Tiny"):
    return _cell(name, ["param W: [H, I]", "h = tanh(W @ x + 0.5 * h[t-1])", "out y = h"])


def block(inputs, values):
    """A block: its inputs and values named after names (linear makes `<value>.W`)."""
    body, cur = [f"in {n}: seq[H]" for n in inputs], " + ".join(inputs)
    for i, n in enumerate(values):
        body.append(f"{n} = " + [f"tanh({cur})", f"linear({cur}, H)", f"layernorm({cur}) + {cur}"][i % 3])
        cur = n
    return "\n".join(["block Blk(H = 4) {", *("    " + b for b in body), f"    out b = {cur}", "}"])


CELLS = {"Params": params_cell, "Values": values_cell, "States": states_cell, "Outputs": outputs_cell}


def model_text(own: list, other: list, definitions=()) -> str:
    """A model over cells holding `own` in every role, a block with `other` as inputs and `own`
    as values, its own values named after `own` and runs after `other`, and cells named after
    `definitions` (test_definition_names)."""
    parts = [CELLS[r](own) for r in CELLS]
    parts += [inputs_cell(own), memories_cell(own), block(other, own), tiny_cell()]
    parts += [tiny_cell(n) for n in definitions]
    lines = ["in xs: seq[I]", "e = tanh(linear(xs, H))"]
    reads = []
    for i, r in enumerate(CELLS):
        lines.append(f"r{i} = {r}(I, H) over xs" + (" reversed" if i % 2 else ""))
        reads.append(f"r{i}.{own[-1]}" if r == "Outputs" else f"r{i}.y")
    lines.append(f"ri = Inputs(I, H) over ({', '.join(f'{n} = xs' for n in own)})")
    lines.append(f"rm = Memories(I, H) over xs attend ({', '.join(f'{n} = e' for n in own)})")
    reads += ["ri.y", "rm.y", f"Blk(H) over ({', '.join(f'{n} = e' for n in other)})"]
    for i, n in enumerate(definitions):
        lines.append(f"d{i} = {n}(I, H) over xs")
        reads.append(f"d{i}.y")
    for i, n in enumerate(other):  # runs: `n.y`, `n.h`, their parameters `n.W`
        lines.append(f"{n} = Tiny(I, H) over xs" + (" reversed" if i % 2 else ""))
        reads.append(f"{n}.{'yh'[i % 2]}")
    cur = "e"
    for i, n in enumerate(own):
        lines.append(f"{n} = tanh({cur} + {reads[i % len(reads)]})")
        cur = n
    lines.append(f"out y = {cur} + {' + '.join(reads[i::len(own)][0] for i in range(min(len(own), len(reads))))}")
    lines += [f"out {n} = r2.h + r3.{own[0]} + {reads[-1 - i % len(reads)]}" for i, n in enumerate(own)]
    model = "\n".join([f"model M({SIZES}) {{", *("    " + x for x in lines), "}"])
    return "\n\n".join(parts + [model]) + "\n"


# ---- which names load -------------------------------------------------------------------------

# one tiny spec per role, with `{n}` where the name goes
ROLE_PROBES = {
    "param": _cell("C", ["param {n}: [H, I]", "h = tanh({n} @ x)", "out y = h"]),
    "value": _cell("C", ["{n} = tanh(h[t-1])", "h = {n}", "out y = h"]),
    "state": _cell("C", ["state {n}: [H]", "{n} = tanh({n}[t-1])", "h = {n}", "out y = h"]),
    "input": _cell("C", ["h = tanh({n})", "out y = h"], ins="in {n}: [H]"),
    "output": _cell("C", ["h = tanh(h[t-1])", "out {n} = h"]),
    "memory": _cell("C", ["memory {n}: seq[H]", "h = sum(softmax({n} @ h[t-1]) * {n})", "out y = h"]),
    "run": tiny_cell("C") + "\nmodel M(I = 2, H = 4) {\n    in xs: seq[I]\n    {n} = C(I, H) over xs\n"
                            "    out y = {n}.y\n}\n",
    "model value": "model M(H = 4) {\n    in xs: seq[H]\n    {n} = tanh(xs)\n    out y = {n}\n}\n",
}


def _probe(role: str, n: str) -> str:
    return ROLE_PROBES[role].replace("{n}", n)


@pytest.fixture(scope="module")
def accepted():
    """The names every role accepts; each refused one must be refused, at the name, in every role."""
    refused = [n for n in NAMES if _refused_at(_probe("value", n), n)]
    for n in refused:
        for role in ROLE_PROBES:
            assert _refused_at(_probe(role, n), n), f"{n!r} is refused as a value but not as a {role}"
    assert {"t", "B", "T", "np", "torch"} <= set(refused)
    return [n for n in NAMES if n not in refused]  # test_every_role loads them in every role


# a name torch.nn.Module has (`forward`) cannot be a parameter's or a run's name in the torch
# module (torch_module.py); test_torch_module_parameter_named_like_a_module_attribute
MODULE_ATTRS = {n for n in NAMES if hasattr(torch.nn.Module, n)}


def _halves(names):
    names = [n for n in names if n not in MODULE_ATTRS]
    return names[0::2], names[1::2]


@pytest.mark.parametrize("half", [0, 1])
def test_every_role(accepted, half):
    """Each half of the names in every role (the other half as runs and block inputs)."""
    a, b = _halves(accepted)
    own, other = (a, b) if half == 0 else (b, a)
    # gradients: NumPy's against torch autograd (finite differences of this big a model: too slow)
    check_all_paths(model_text(own, other), "M", seed=half, steps=3, fd=False)


def test_definition_names():
    """Every name names a definition (the checker's reserved names too: a definition's name reaches
    generated code only inside function names). One model runs them all; as one cell per name is
    one generated function per compile, the paths are those the naming rule can break: NumPy
    inference and value_and_grad, torch fused and unfused with autograd, against the interpreter."""
    names = NAMES
    for n in names:
        assert not _refused_at(tiny_cell(n), n), n
    body = ["in xs: seq[I]"] + [f"d{i} = {n}(I, H) over xs" + (" reversed" if i % 3 == 1 else "")
                                for i, n in enumerate(names)]
    body.append("out y = " + " + ".join(f"d{i}.y" for i in range(len(names))))
    text = "\n\n".join([tiny_cell(n) for n in names] +
                        ["\n".join([f"model M({SIZES}) {{", *("    " + x for x in body), "}"])]) + "\n"
    program = seqdsl.load(text)
    exe = seqdsl.compile(program, backend="numpy", name="M", dtype="float64")
    exe.init_params(2)
    inputs = exe.example_inputs(batch=2, steps=3, seed=2)
    want_out, want_fin = interpret.run(program, "M", None, exe.params, inputs, None)
    got_out, got_fin = exe(**inputs)
    _close_dicts("numpy outputs", got_out, want_out, 1e-10)
    _close_dicts("numpy final", got_fin, want_fin, 1e-10)
    rng = np.random.default_rng(2)
    d_out = {k: rng.standard_normal(v.shape) for k, v in want_out.items()}
    d_fin = {k: rng.standard_normal(v.shape) for k, v in want_fin.items()}
    g_out, g_fin, grads = exe.value_and_grad(inputs, d_out, d_fin)
    _close_dicts("numpy value_and_grad outputs", g_out, want_out, 1e-10)
    for fused in (True, False):
        _check_torch(program, "M", exe.params, inputs, None, want_out, want_fin, d_out, d_fin, grads, fused, "")


def test_function_names_differ():
    """`A(H = 1)` and `A_H1()` are two functions (they were both `cell_A_H1`)."""
    text = """cell A(H = 1) {
    in x: [2]
    state h: [H]
    param W: [H, 2]
    h = tanh(W @ x + h[t-1])
    out y = h
}
cell A_H1() {
    in x: [2]
    state h: [3]
    param W: [3, 2]
    h = sigmoid(W @ x) * h[t-1] + 0.5
    out y = h
}
cell A_(H = 1) {
    in x: [2]
    state h: [H]
    param W: [H, 2]
    h = relu(W @ x) - h[t-1]
    out y = h
}
model M() {
    in xs: seq[2]
    a = A(H = 1) over xs
    b = A_H1() over xs
    c = A_(H = 1) over xs
    out y = concat(a.y, b.y, c.y)
}
"""
    check_all_paths(text, "M", seed=3, steps=4)
    src = seqdsl.compile(text, dtype="float64").source
    fnames = re.findall(r"^def (\w+)\(", src, re.M)
    assert {"cell_A__H_1", "cell_A_H1__", "cell_A___H_1", "model_M__"} <= set(fnames)
    assert len(fnames) == len(set(fnames))


def test_trailing_underscores_and_dotted_parameters():
    """Names that lowering joins with "_" (`a_` and `y` → `a__y`, `h_` twice → `h__2`) and
    dotted parameters (`o.W`) next to a value named `o_W` and a field read `o_.W` (node `o__W`):
    `out w` returned the parameter `o.W` when both were the variable `o__W`."""
    text = """cell R(I = 2, H = 4) {
    in x: [I]
    state h: [H]
    state h_: [H]
    param W: [H, I]
    param V: [2*H, I]
    W_, y = split(tanh(V @ x + concat(h[t-1], h_[t-1])), 2)
    h = tanh(W @ x) + W_ * y
    h_ = sigmoid(h[t-1])
    out W = h
    out y = h_
}
model M(I = 2, H = 4) {
    in xs: seq[I]
    o_ = R(I, H) over xs
    a_ = R(I, H) over xs reversed
    o_W = tanh(o_.W + a_.y)
    repeat 2 {
        h_ = tanh(linear(o_W, H) + o_.h_)
        o_W = h_ * 0.5 + o_W
    }
    out o = linear(o_W, 3)
    out w = o_.W
    out o_W = o_W
}
"""
    check_all_paths(text, "M", seed=4, steps=4)
    nodes = set(seqdsl.load(text).definitions["M"].graph)  # the shapes this test is about
    assert {"o__W", "o.W", "o_W", "h_", "h__2"} <= nodes, sorted(nodes)


def test_double_underscore():
    for n in ("h__d1", "pre__", "x__in", "cell_A__H_1"):
        for role in ("value", "param", "input", "output"):
            assert _refused_at(_probe(role, n), n)


def test_slice_of_a_slice_of_a_split():
    """With lift_slices off, torch splits a part of a fused split again (was a NameError:
    the part's own `__parts` was never made)."""
    text = """cell C(I = 3, H = 4) {
    in x: [I]
    state h: [H]
    param W1: [H, I]
    param W2: [H, I]
    param U: [H, H]
    a = W1 @ x
    b = W2 @ x
    p, q = split(b, 2)
    p1, p2 = split(p, 2)
    h = tanh(a + U @ h[t-1]) + concat(p1, p2, q)
    out y = h
}
"""
    check_all_paths(text, "C", seed=5, steps=3, pass_off="lift_slices")


def test_torch_module_parameter_named_like_a_module_attribute():
    for n in sorted(MODULE_ATTRS):
        seqdsl.compile(_probe("param", n), backend="torch")


# ---- the rule itself, on the generated source -------------------------------------------------

def _functions(tree):
    return [f for f in tree.body if isinstance(f, ast.FunctionDef)]


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_generated_names_follow_the_rule(backend, accepted):
    """In every function that holds IR values, a name is an IR value's variable (never with
    "__"), or contains "__", or is one of the few plain names the code reads; and no such
    function binds a name it also reads as a global."""
    from seqdsl.backends import codegen
    from seqdsl.backends.numpy import EMITTER as NP
    from seqdsl.backends.torch import EMITTER as TT
    from seqdsl.driver import plan

    em = {"numpy": NP, "torch": TT}[backend]
    a, b = _halves(accepted)
    sources = [(ROOT / f"specs/{f}.seq", None) for f in ("attention", "stacked", "transformer")]
    for src, name in sources + [(model_text(a[:12], b[:12]), "M")]:
        program = seqdsl.load(src)
        for defn in [name or list(program.definitions)[-1]]:
            p = plan(program, defn, {}, em)
            tree = ast.parse(codegen.Codegen(program, p, em, "float64").module("x.seq"))
            variables = set()
            for u in p.units:
                assert not any("__" in v for v in u.names.values()), u.names
                variables |= set(u.names.values())
            module_names = {f.name for f in _functions(tree)} | {
                t.id for s in tree.body if isinstance(s, ast.Assign) for t in s.targets if isinstance(t, ast.Name)}
            # what functions may read as globals: helpers, the other functions, np, torch, builtins
            read_globals = (module_names - API) | codegen.PLAIN | set(dir(builtins))
            assert not variables & read_globals, sorted(variables & read_globals)
            for f in _functions(tree):
                units = [u for u in p.units if f.name in (u.fname, u.twin("grad"), u.twin("loop"))]
                if not units or (units[0].standard is not None and f.name == units[0].fname):
                    continue  # helpers, forward, the fused kernel's wrapper: no IR value in their scope
                bound = {n.id for n in ast.walk(f) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
                bound |= {x.arg for n in ast.walk(f) if isinstance(n, ast.arguments) for x in n.args}
                bound |= {n.name for n in ast.walk(f) if isinstance(n, ast.FunctionDef) and n is not f}
                made = bound - variables - {"t", "B", "T"}  # the names the code makes, but the loop's
                assert all("__" in n for n in made), (f.name, sorted(n for n in made if "__" not in n))
                assert not made & read_globals, (f.name, sorted(made & read_globals))
                read = {n.id for n in ast.walk(f) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
                assert read - bound <= read_globals, (f.name, sorted(read - bound - read_globals))


API = {"DTYPE", "KIND", "NAME", "SIZES", "PARAMS", "INPUTS", "MEMORIES", "OUTPUTS", "STATES", "STATE_SHAPES",
       "forward", "forward_grad"}


def test_variable_names_escape():
    import networkx as nx

    from seqdsl.backends.codegen import PLAIN
    from seqdsl.backends.value_names import variable_names

    g = nx.MultiDiGraph()
    g.add_nodes_from(["o.W", "o_W", "a__y", "a_y", "_mm", "h", "x@3", "q_.W"])
    names = variable_names(g, PLAIN | {"_mm"})
    assert names["h"] == "h" and names["o_W"] == "o_W" and names["a_y"] == "a_y"
    assert names["o.W"] == "o_W_2" and names["a__y"] == "a_y_2" and names["_mm"] == "_mm_2"
    assert names["q_.W"] == "q_W" and names["x@3"] == "x_at_3"
    assert len(set(names.values())) == len(names) and not any("__" in v for v in names.values())


@pytest.mark.parametrize("spec", ["lstm", "gru", "peephole_lstm"])
def test_loop_temporaries_are_named_after_spec_values(spec):
    """Every value the generated NumPy loop computes is a spec name or a temporary named
    `_` + the spec values it holds + its op (`_i_f_o_g_tanh`, `_c_mul`): never a name made of
    counters and offsets (`_i5_0_64_act_h`), and a fused gate block is named after all its gates."""
    from seqdsl.ops import Op

    program = seqdsl.load(ROOT / f"specs/{spec}.seq")
    g = program.specialize(program.main.name, {})
    spec_names = {n for n in g.nodes if not g.nodes[n].get("temp")}
    ops = {op.value for op in Op}
    src = seqdsl.compile(ROOT / f"specs/{spec}.seq").source
    loop = src.split("for t in", 1)[1].split("return _Run", 1)[0]
    targets = re.findall(r"^\s+(\w+) = ", loop, re.M)
    assert targets
    for name in targets:
        if "__" in name or name in spec_names:
            continue
        words = name.lstrip("_").split("_")
        base = [w for w in words if not w.isdigit()]
        assert base[-1] in ops, (name, "does not end with its op")
        held = "_".join(base[:-1])
        assert held and all(part in spec_names or part == "to" for part in _split_names(held, spec_names)), name
    if spec == "lstm":
        assert "_i_f_o_g_tanh = np.tanh(" in loop and "_c_mul = np.multiply(f, c__d1, c__d1)" in loop


def _split_names(text: str, names: set) -> list:
    """`i_f_o_g` → [i, f, o, g]; `W_hi_W_hf` → [W_hi, W_hf]: the longest spec names first."""
    out, rest = [], text
    while rest:
        match = max((n for n in names | {"to"} if rest == n or rest.startswith(n + "_")), key=len, default=None)
        if match is None:
            return [rest]
        out.append(match)
        rest = rest[len(match) + 1:]
    return out

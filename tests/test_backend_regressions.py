"""Regressions of the backends on small specs: the NumPy memory plan and torch's `split`.

Every spec runs through NumPy inference, NumPy `value_and_grad` (its outputs), and torch fused
and unfused, against the reference interpreter, in float64 (atol 1e-10; NaN never counts as
equal). The NumPy run must also leave the caller's inputs, initial states and parameters as
they were.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import seqdsl
from seqdsl.interpret import run

STEPS = 6


def _same(got, want, what):
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, what
    assert not np.isnan(got).any() and not np.isnan(want).any(), what
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-10, err_msg=what)


def agree(text: str, torch_too: bool = True) -> None:
    program = seqdsl.load(text)
    name = list(program.definitions)[-1]
    exe = seqdsl.compile(program, name=name, dtype="float64")
    exe.init_params(5)
    params = {k: v.copy() for k, v in exe.params.items()}
    inputs = exe.example_inputs(batch=2, steps=STEPS, seed=1)
    kept_inputs = {k: v.copy() for k, v in inputs.items()}
    state = None
    if program.definitions[name].kind == "cell":  # initial states other than the declared ones
        rng = np.random.default_rng(2)
        state = {s: rng.standard_normal(v.shape) for s, v in exe(**inputs)[1].items()}
    kept_state = {k: v.copy() for k, v in (state or {}).items()}
    want, want_final = run(program, name, None, params, inputs, state)

    def check(tag, got, final):
        assert set(got) == set(want), tag
        for k in want:
            _same(got[k], want[k], f"{tag}: output {k}")
        for k in want_final:
            _same(final[k], want_final[k], f"{tag}: final {k}")

    if program.definitions[name].kind == "cell":
        no_writes_outside_the_step(program.definitions[name].graph, exe.source)
    got, final = exe(**inputs, state=state)
    check("numpy", got, final)
    for k, v in kept_inputs.items():
        np.testing.assert_array_equal(inputs[k], v, err_msg=f"numpy changed input {k}")
    for k, v in kept_state.items():
        np.testing.assert_array_equal(state[k], v, err_msg=f"numpy changed initial state {k}")
    for k, v in params.items():
        np.testing.assert_array_equal(exe.params[k], v, err_msg=f"numpy changed parameter {k}")
    got, final, _ = exe.value_and_grad(inputs, {k: np.ones_like(v) for k, v in want.items()}, state=state)
    check("numpy value_and_grad", got, final)
    if not torch_too:
        return
    torch = pytest.importorskip("torch")
    for fused in (True, False):
        module = seqdsl.compile(program, name=name, backend="torch", dtype="float64", fused=fused)
        with torch.no_grad():
            for k, p in module.params.items():
                p.copy_(torch.from_numpy(params[k]))
            tstate = {k: torch.from_numpy(v) for k, v in state.items()} if state else None
            got, final = module(**{k: torch.from_numpy(v) for k, v in inputs.items()}, state=tstate)
        check(f"torch fused={fused}", {k: v.numpy() for k, v in got.items()},
              {k: v.numpy() for k, v in final.items()})


def no_writes_outside_the_step(g, source: str) -> None:
    """The loop writes into no hoisted view (`__steps[t]`, `__t`), parameter, memory or input."""
    theirs = {n for n, d in g.nodes(data=True) if d["op"].value in ("param", "memory", "input")}
    source = source[:source.index("__grad(")]
    loop = source[source.index("    for t in"):]
    for target in re.findall(r"= (?:np\.\w+|_sigmoid|_sigtanh)\(.*[ =]([\w\[\]\.]+)\)$", loop, re.M):
        assert "__steps" not in target and not target.endswith("__t") and target not in theirs, target


# ---- 1. a value read after a later node could overwrite it: outputs, states, views, identities ----

LIVENESS = {
    # the brief's case: f is overwritten in place by tanh(f) before it is copied to `gate`
    "output_of_intermediate": """
cell C(I = 3, H = 4) {
    in x: [I]
    state c: [H] = zeros
    param W: [H, I]
    param U: [H, H]
    f = sigmoid(W @ x + U @ c[t-1])
    c = tanh(f) + c[t-1]
    out gate = f
    out y = c
}""",
    "output_of_a_slice": """
cell C(I = 4, H = 4) {
    in x: [I]
    state h: [H] = zeros
    param U: [H, H]
    z = tanh(x + U @ h[t-1])
    a, b = split(z, 2)
    h = concat(sigmoid(a), b * a)
    out first = a
    out whole = z
}""",
    "state_is_an_intermediate_read_later": """
cell C(I = 4, H = 4) {
    in x: [I]
    state h: [H] = zeros
    state c: [H] = ones
    param U: [H, H]
    f = sigmoid(x + U @ h[t-1])
    h = f
    c = tanh(f) * c[t-1] + exp(-f)
    out y = c
}""",
    "identity_of_a_value_read_later": """
cell C(I = 4, H = 4) {
    in x: [I]
    state h: [H] = zeros
    f = tanh(x + h[t-1])
    e = f
    g = sigmoid(f)
    h = g * f
    out e = e
    out g = g
}""",
    "output_of_a_delayed_state": """
cell C(I = 4, H = 4) {
    in x: [I]
    state h: [H] = zeros
    param W: [H, I]
    param U: [H, H]
    h = tanh(W @ x + U @ h[t-1])
    out prev = h[t-1]
    out older = h[t-3]
    out y = h
}""",
    "state_equal_to_another_state": """
cell C(I = 4, H = 4) {
    in x: [I]
    state a: [H] = zeros
    state b: [H] = zeros
    a = tanh(x + a[t-1] * b[t-2])
    b = a
    out y = tanh(b[t-1]) + a[t-2]
}""",
    "shift_register": """
cell C(I = 4, H = 4) {
    in x: [I]
    state a: [H] = 0.5
    state b: [H] = zeros
    state c: [H] = zeros
    a = tanh(x + c[t-1] - a[t-2])
    b = a[t-1]
    c = b[t-1]
    u = sigmoid(a[t-2]) * tanh(b[t-1])
    out y = u
    out z = c
}""",
    "chain_in_history_buffer_still_read": """
cell C(I = 4, H = 4) {
    in x: [I]
    state s: [H] = ones
    state r: [H] = zeros
    e = exp(tanh(relu(s[t-3]) + x))
    s = tanh(e - s[t-2] * r[t-1])
    r = tanh(e + s[t-2])
    out e = e
    out r = r
}""",
    "several_readers_and_slices_of_a_delayed_state": """
cell C(I = 4, H = 4) {
    in x: [I]
    state h: [H] = zeros
    param U: [H, H]
    p, q = split(h[t-2], 2)
    z = concat(tanh(p), sigmoid(q))
    w = z * x + tanh(z) - U @ z
    h = tanh(w + h[t-1])
    out z = z
    out w = w
}""",
    "state_is_a_slice_of_a_hoisted_value": """
cell C(I = 4, H = 2) {
    in x: [I]
    state k: [H] = zeros
    state h: [H] = zeros
    param W: [I, I]
    a, k = split(W @ x, 2)
    h = tanh(a + k[t-1] * h[t-1])
    out y = tanh(k[t-2]) + h
    out k = k
}""",
    "state_is_a_slice_of_the_input": """
cell C(I = 4, H = 2) {
    in x: [I]
    state k: [H] = zeros
    state h: [H] = zeros
    a, k = split(x, 2)
    h = sigmoid(k[t-1]) * tanh(a + h[t-1])
    out y = h
}""",
    "memory_outputs_collected_per_step": """
cell C(I = 4, H = 4) {
    in x: [I]
    memory m: seq[H]
    state h: [H] = zeros
    param W: [H, I]
    e = m * h[t-1]
    s = softmax(tanh(e) @ W @ x)
    ctx = sum(s * e)
    h = tanh(ctx + W @ x + h[t-2])
    out e = e
    out s = s
    out y = h
}""",
}


@pytest.mark.parametrize("name", list(LIVENESS))
def test_values_are_not_overwritten_while_read(name):
    agree(LIVENESS[name])


# ---- 2. split of a value the function prologue binds (torch took `__parts` that did not exist) ----

SPLITS = {
    "param": """
cell C(I = 4) {
    in x: [I]
    state h: [2] = zeros
    param W: [4]
    p, q = split(W, 2)
    a, b = split(x, 2)
    h = tanh(a @ p + b * h[t-1] - q)
    out y = h
}""",
    "input_into_a_state": """
cell C(I = 4) {
    in x: [I]
    state h: [2] = zeros
    state k: [2] = zeros
    a, k = split(x, 2)
    h = tanh(a * h[t-1] + k[t-2])
    out y = h
}""",
    "hoisted_value_into_a_state": """
cell C(I = 4) {
    in x: [I]
    state h: [2] = zeros
    state k: [2] = zeros
    param W: [4, 4]
    a, k = split(W @ x, 2)
    h = tanh(a * h[t-1] + k[t-3])
    out y = h
}""",
    "memory": """
cell C(I = 4, H = 4) {
    in x: [I]
    memory m: seq[H]
    state h: [2] = zeros
    a, b = split(m, 2)
    s = softmax(a @ h[t-1])
    h = tanh(sum(b * s) + h[t-1])
    out y = h
    out att = s
}""",
    "delayed_state": """
cell C(I = 4) {
    in x: [I]
    state h: [4] = zeros
    param W: [4, 4]
    a, b = split(h[t-1], 2)
    h = tanh(W @ x + concat(b, tanh(a)))
    out y = h
}""",
    "three_ways_in_the_step": """
cell C(I = 6) {
    in x: [I]
    state h: [6] = zeros
    param U: [6, 6]
    a, b, c = split(U @ h[t-1], 3)
    h = tanh(x + concat(sigmoid(a), c, b * c))
    out y = h
}""",
    "model_run_output": """
cell R(I = 4, H = 4) {
    in x: [I]
    state h: [H] = zeros
    param W: [H, I]
    h = tanh(W @ x + h[t-1])
    out y = h
}
model M(I = 4, H = 4) {
    in src: seq[I]
    enc = R(I, H) over src
    a, b = split(enc.y, 2)
    out z = linear(a, 3)
    out w = tanh(b)
}""",
}


@pytest.mark.parametrize("name", list(SPLITS))
def test_split_of_any_value(name):
    agree(SPLITS[name])


def test_torch_takes_parts_of_assigned_values_only():
    torch_src = seqdsl.compile(SPLITS["three_ways_in_the_step"], backend="torch", fused=False).source
    assert "__parts = " in torch_src  # a computed value still splits in one call
    for name in ("param", "memory", "input_into_a_state", "hoisted_value_into_a_state", "model_run_output"):
        src = seqdsl.compile(SPLITS[name], backend="torch", fused=False).source
        for line in src.splitlines():
            if "__parts[" in line:
                base = line.split("= ", 1)[1].split("__parts[")[0]
                assert f"{base}__parts = " in src, (name, line)


# ---- 3. buffers that outlive the step, or belong to someone else ----------------------------

def test_results_and_arguments_survive_later_calls():
    """Outputs, final states, inputs and memory are never buffers a later step or call writes."""
    text = LIVENESS["memory_outputs_collected_per_step"]
    exe = seqdsl.compile(text, dtype="float64")
    inputs = exe.example_inputs(batch=2, steps=STEPS, seed=3)
    kept = {k: v.copy() for k, v in inputs.items()}
    outs, final = exe(**inputs)
    first = {k: v.copy() for k, v in {**outs, **final}.items()}
    exe(**exe.example_inputs(batch=2, steps=STEPS, seed=4))
    for k, v in {**outs, **final}.items():
        np.testing.assert_array_equal(v, first[k], err_msg=k)
    for k, v in inputs.items():
        np.testing.assert_array_equal(v, kept[k], err_msg=k)


def test_memory_plan_keeps_the_lstm_loop_in_place():
    """The fixes keep every safe reuse: the LSTM step still allocates nothing."""
    from conftest import ROOT

    src = seqdsl.compile(ROOT / "specs/lstm.seq").source
    loop = src[src.index("    for t in"):]
    loop = loop[:loop.index("\n    return")]
    assert "np.multiply(f, c__d1, c__d1)" in loop and "np.add(_c_mul, _c_mul_2, _c_mul)" in loop
    assert "np.multiply(o, _h_tanh, h__d1)" in loop and "np.tanh(c, _h_tanh__buf)" in loop


def plan_is_safe(source, name: str | None = None, steps: int = 7) -> None:
    """Run the NumPy memory plan on symbolic arrays, independently of the generated code.

    Every array holds a version per column; a write bumps the versions of the columns it
    writes. Every value remembers the versions it was made with, and every read (a reader in the
    step, a delayed read steps later, the output copy and the state rotation at the end of the
    step, a list that keeps a memory-axis output, the final states) must find them unchanged.
    Arrays the loop does not own (hoisted values, parameters, memory, inputs, the caller's
    initial states) must never be written."""
    from seqdsl.backends.numpy import EMITTER
    from seqdsl.driver import plan as compile_plan
    from seqdsl.ir import delays, in_edges, interface, topo_order
    from seqdsl.ops import Op
    from seqdsl.schedule.buffers import plan

    program = seqdsl.load(source)
    g = compile_plan(program, name or list(program.definitions)[-1], {}, EMITTER).main.graph
    order = topo_order(g)
    step = [n for n in order if g.nodes[n]["hoist"] == "step" and g.nodes[n]["op"] != Op.OUTPUT]
    states = list(interface(g)["states"])
    max_delay = {s: ks[-1] for s, ks in delays(g).items()}
    mp = plan(g, step, states, max_delay, lambda n: EMITTER.writes_into(g, n))
    owned = set(mp.own) | {in_edges(g, n)[p][0] for n, p in mp.inplace.items() if in_edges(g, n)[p][2]}

    def width(n):
        dims = g.nodes[n]["type"].dims
        return dims[-1].value if dims else 1

    class Array:
        def __init__(self, n, theirs=False):
            self.ver, self.theirs = [0] * width(n), theirs

    def ref(arr, lo=0, hi=None):  # a value: an array, its columns, their versions when made
        hi = len(arr.ver) if hi is None else hi
        return (arr, lo, hi, tuple(arr.ver[lo:hi]))

    def read(r, what):
        arr, lo, hi, ver = r
        assert tuple(arr.ver[lo:hi]) == ver, f"{what} was overwritten before it was read"

    def write(r, what):
        arr, lo, hi, _ = r
        assert not arr.theirs, f"{what} writes into an array the loop does not own"
        for c in range(lo, hi):
            arr.ver[c] += 1
        return ref(arr, lo, hi)

    hist, caller = {}, []
    for s in states:
        init = Array(s, theirs=True)
        caller.append((ref(init), f"initial {s}"))
        d1 = ref(Array(s)) if s in owned else ref(init)
        hist[s] = [d1] + [ref(Array(s)) if s in owned else d1 for _ in range(max_delay[s] - 1)]
    static = {n: Array(n) for n in mp.static}
    kept = []

    def value(val, u, k):
        if k:
            return hist[u][k - 1]
        if u in val:
            return val[u]
        return ref(Array(u, theirs=True))  # computed before the loop

    for t in range(steps):
        val = {}
        for n in step:
            d = g.nodes[n]
            ins = in_edges(g, n)
            if d["op"] in (Op.SLICE, Op.IDENTITY):  # a view reads nothing yet
                arr, lo, hi, ver = value(val, ins[0][0], ins[0][2])
                if d["op"] == Op.SLICE:
                    a, b = d["start"].value, d["stop"].value
                    arr, lo, hi, ver = arr, lo + a, lo + b, ver[a:b]
                val[n] = (arr, lo, hi, ver)
                continue
            for u, _, k in ins:
                read(value(val, u, k), f"{u}[t-{k}] at {n}" if k else f"{u} at {n}")
            if n in mp.inplace:
                u, _, k = ins[mp.inplace[n]]
                val[n] = write(value(val, u, k), n)
            elif n in mp.own:
                val[n] = write(hist[n][mp.own[n] - 1], n)
            elif n in static:
                val[n] = write(ref(static[n]), n)
            else:
                val[n] = ref(Array(n))
        for o in (o for o in g.nodes if g.nodes[o]["op"] == Op.OUTPUT):
            (src, _, _), = in_edges(g, o)
            if src in val:
                read(val[src], f"output {g.nodes[o]['output']} at step {t}")
                if g.nodes[o]["type"].seq:
                    kept.append((val[src], f"output {g.nodes[o]['output']} of step {t}"))
        for s in states:
            read(val[s], f"state {s} at the end of step {t}")
            hist[s] = [val[s]] + hist[s][:-1]
    for s in states:
        read(hist[s][0], f"final {s}")
    for r, what in kept + caller:
        read(r, what)


@pytest.mark.parametrize("name", list(LIVENESS) + list(SPLITS)[:6])
def test_memory_plan_is_safe_with_outputs_copied_at_the_end_of_the_step(name):
    plan_is_safe({**LIVENESS, **SPLITS}[name])


@pytest.mark.parametrize("spec,name", [("rnn", "RNN"), ("lstm", "LSTM"), ("gru", "GRU"), ("delay2", "Delay2RNN"),
                                       ("peephole_lstm", "PeepholeLSTM"), ("attention", "BahdanauDecoder"),
                                       ("attention", "LuongDecoder")])
def test_memory_plan_of_the_spec_cells_is_safe(spec, name):
    from conftest import ROOT

    plan_is_safe(ROOT / f"specs/{spec}.seq", name)


def test_token_vocabulary_seen_through_a_block(tmp_path):
    """The generated module itself knows that ids read by a block's embedding lie below its
    vocabulary (it said 1, so the standalone file's example inputs were all zeros)."""
    text = ("block Emb(V = 7, D = 4) {\n    in tok: seq<int>\n    out y = embed(tok, V, D)\n}\n"
            "model M(V = 7, D = 4) {\n    in src: seq<int>\n    e = Emb(V, D) over src\n"
            "    out y = linear(e.y, 2)\n}\n")
    exe = seqdsl.compile(seqdsl.load(text), name="M")
    assert exe._ns["INPUTS"]["src"][4] == 7
    ids = exe.example_inputs(batch=4, steps=50, seed=0)["src"]
    assert ids.min() >= 0 and ids.max() == 6
    with pytest.raises(ValueError, match="src"):
        exe(src=np.full((1, 3), 7))

"""Pass fixtures: IR text in → one pass → IR text out, for every pass (tests/golden/passes/).

Each `tests/golden/passes/<pass>/<case>.in.ir` is read with `seqdsl.ir_parse.from_text`, the one
pass runs (`PASSES`), `verify()` checks the result and its `to_text` must equal `<case>.out.ir`.
A fixture is just those two files: a hand-written `.in.ir` (any IR the pass should handle) is
tested like the others. `CASES` lists the fixtures made from specs: their `.in.ir` is the IR of
that definition just before the pass in the pipeline (`pipeline_input`).

    SEQDSL_ACCEPT=1 .venv/bin/python -m pytest -q tests/test_pass_fixtures.py

rewrites the `.in.ir` of every case in `CASES` from its spec, then every `.out.ir`; review with
`git diff`. A `.in.ir` that is not in `CASES` is never rewritten. Also here: every definition of
every spec, before and after every pass, reads back from its text unchanged, and a pass gives
the same IR on the graph read back as on the original (line order aside: see `same_lines`).
"""

from __future__ import annotations

import functools
import os

import pytest
from conftest import GOLDEN, ROOT, SPEC_FILES, SPECS, golden

import seqdsl
from seqdsl.ir import states, to_text, verify
from seqdsl.ir_parse import from_text
from seqdsl.passes import PIPELINE, fuse_matmuls, hoist, lift_slices, reassociate, unroll
from seqdsl.passes.dropout import with_dropout
from seqdsl.passes.fuse_lstm_step import fuse_lstm_step
from seqdsl.passes.fuse_multiply_add import fuse_multiply_add
from seqdsl.passes.given_states import given_states, previous_values, run_states
from seqdsl.passes.last_state import last_state
from seqdsl.passes.mask_lengths import mask_lengths
from seqdsl.passes.sigmoid_via_tanh import sigmoid_via_tanh
from seqdsl.passes.split_steps import split_steps

FIXTURES = GOLDEN / "passes"
UNROLL_STEPS = 3

# pass name → the pass as the fixture runs it
PASSES = {
    "reassociate": reassociate,
    "fuse_matmuls": fuse_matmuls,
    "lift_slices": lift_slices,
    "fuse_multiply_add": fuse_multiply_add,
    "fuse_lstm_step": fuse_lstm_step,  # (torch, generation's step module: before the shared passes)
    "sigmoid_via_tanh": sigmoid_via_tanh,
    "hoist": hoist,
    "unroll": lambda g: in_stable_order(unroll(g, UNROLL_STEPS), g),
    "mask_lengths": mask_lengths,  # cells: a model's needs its callees' masks (tests/test_lengths.py)
    "dropout": with_dropout,  # training; cells (a model's needs its callees': tests/test_dropout.py)
    # generation: the step part (the begin part: tests/test_generation.py); callees from specs/
    "split_steps": lambda g: split_steps(g, "step", callee_states),
    # every run state given (`state=` of a model call), and the first y[t-1]
    "given_states": lambda g: given_states(g, [*run_states(g, callee_states), *previous_values(g)], callee_states),
    "last_state": lambda g: last_state(g, callee_states),
}
BACKEND_PASSES = {"numpy": (sigmoid_via_tanh,), "torch": (fuse_multiply_add,)}

# small specs for the edge cases of one pass (the standard cells come from specs/)
HAND = {
    "last_mixed": """
use "lstm.seq"
model LastMixed(V = 5, H = 3) {
    in  w: seq<int>
    fwd  = LSTM(V, H) over onehot(w, V)
    back = LSTM(V, H) over onehot(w, V) reversed
    bi   = LSTM(V, H) over onehot(w, V) bidirectional
    out a = fwd.h[last] + fwd.c[last]        # states of a forward run: its final states
    out b = back.h[last]                     # reversed, bidirectional: [last] stays
    out d = bi.h[last]
    out c = fwd.y[last]                      # an output, not a state: [last] stays
}
""",
    "dropout_param": """
cell DropBias(I = 3, H = 4) {
    in    x: [I]
    state h: [H] = zeros
    param W: [H, I] ~ uniform(1/sqrt(H))
    param b: [H] = 0
    h = tanh(W @ x + dropout(b, 0.5) + h[t-1])   # a parameter's mask: drawn per step, per sample
    out y = dropout(h, 0.2)
}
""",
    "dropout_cell": """
cell DropRNN(I = 3, H = 4) {
    in    x: [I]
    memory m: seq[H]
    state h: [H] = zeros
    param W: [H, I] ~ uniform(1/sqrt(H))
    param U: [H, H] ~ uniform(1/sqrt(H))
    a = softmax(m @ h[t-1])
    h = tanh(W @ dropout(x, 0.25) + U @ dropout(h[t-1], 0.5, variational = true) + sum(a * dropout(m, 0.1)))
    out y = h
}
""",
    "named_sum": """
cell NamedSum(I = 3, H = 4) {
    in    x: [I]
    state h: [H] = zeros
    param W: [H, I] ~ uniform(1/sqrt(H))
    param U: [H, H] ~ uniform(1/sqrt(H))
    param b, c: [H] = 0
    s = W @ x + b                    # a named sum: a term of the tree below, never taken apart
    h = tanh(U @ h[t-1] + s + c)
    out y = h
}
""",
    "scalar_terms": """
cell ScalarTerms(I = 3, H = 4) {
    in    x: [I]
    state h: [H] = zeros
    param W: [H, I] ~ uniform(1/sqrt(H))
    param b: [H] = 0
    h = tanh(h[t-1] + 2.0 + 3.0 + W @ x + b)   # 2.0 + 3.0 is a scalar partial sum
    out y = h
}
""",
    "mixed_operands": """
cell MixedOperands(I = 3, H = 4) {
    in    x: [I]
    state h: [H] = zeros
    param A: [H, I] ~ uniform(1/sqrt(H))
    param C: [2*H, I] ~ uniform(1/sqrt(H))
    param D: [H, H] ~ uniform(1/sqrt(H))
    param Q: [H, 2*H] ~ uniform(1/sqrt(H))
    a = tanh(A @ x + D @ h[t-1])     # A and C share x (and columns): fused; D alone
    h = sigmoid(Q @ (C @ x)) * a
    out y = h
}
""",
    "state_gate": """
cell StateGate(I = 3, H = 4) {
    in    x: [I]
    state h: [H] = zeros
    state z: [H] = zeros
    param Wz, Wn: [H, I] ~ uniform(1/sqrt(H))
    param Uz, Un: [H, H] ~ uniform(1/sqrt(H))
    param bz, bn: [H] = 0
    z = sigmoid(Wz @ x + Uz @ h[t-1] + bz)   # a state, read at t-1: keeps its name and state
    n = tanh(Wn @ x + Un @ h[t-1] + bn)
    h = z[t-1] * n + (1 - z) * h[t-1]
    out y = h
}
""",
    "scalar_products": """
cell ScalarProducts(I = 4, H = 4) {
    in    x: [I]
    state h: [H] = zeros
    param q: [H] ~ uniform(1/sqrt(H))
    param W: [H, I] ~ uniform(1/sqrt(H))
    a = W @ x + 0.5 * h[t-1]                 # a number times a vector: stays an addition
    h = tanh(a + (q @ h[t-1]) * h[t-1] + x * h[t-1])   # a per-sample scalar: stays; x * h: addcmul
    out y = h
}
""",
    "lstm_steps": """
cell LstmSteps(I = 3, H = 2) {
    in    x: [I]
    state h: [H] = zeros
    state c: [H] = zeros
    state h2: [H] = zeros
    state c2: [H] = zeros
    param W: [4*H, I]
    param U: [4*H, H]
    param b1, b2: [4*H] = 0
    z = b1 + U @ h[t-1] + (W @ x + b2)       # any order, two biases: fused
    i, f, g, o = split(z, 4)
    c = tanh(g) * sigmoid(i) + c[t-1] * sigmoid(f)
    h = tanh(c) * sigmoid(o)
    z2 = W @ x + U @ h2[t-1]
    i2, f2, o2, g2 = split(z2, 4)            # not torch's gate order: stays
    c2 = sigmoid(f2) * c2[t-1] + sigmoid(i2) * tanh(g2)
    h2 = sigmoid(o2) * tanh(c2)
    out y = h + h2
    out gate = f2                            # (read outside the pattern too)
}
""",
    "lstm_misses": """
cell LstmMisses(I = 3, H = 2) {
    in    x: [I]
    state h: [H] = zeros
    state c: [H] = zeros
    param W: [4*H, I]
    param U: [4*H, H]
    param p: [H]
    z = W @ x + U @ h[t-1]
    i, f, g, o = split(z, 4)
    c = sigmoid(f) * c[t-1] + sigmoid(i) * tanh(g) + p * c[t-1]   # a peephole: stays
    h = sigmoid(o) * tanh(c)
    out y = h
    out gate = o                             # a gate read outside the pattern: stays
}
""",
    "weighted_sums": """
cell WeightedSums(H = 4) {
    in     x: [H]
    memory m: seq[H]
    state  h: [H] = zeros
    a   = softmax(m @ h[t-1])                # weights seq[]
    ctx = sum(a * m)                         # weights times values: wsum
    w   = a * m
    kept = sum(w)                            # the product has another reader (out p): stays
    sq  = sum(m * m)                         # two seq[H]: no weights, stays
    h   = tanh(x + ctx + kept + sq)
    out y = h
    out p = w
}
""",
    "shared_bias": """
cell SharedBias(I = 4, H = 4) {
    in    x: [I]
    state h: [H] = zeros
    param W: [H, I] ~ uniform(1/sqrt(H))
    param U: [H, H] ~ uniform(1/sqrt(H))
    param b: [H] = 0
    g = sigmoid(W @ x + U @ h[t-1] + b)      # b is also read by the tanh: halved on one edge only
    h = g * tanh(b + x)
    out y = h
}
""",
    "sliced_gate": """
cell SlicedGate(I = 3, H = 4) {
    in    x: [I]
    state h: [H] = zeros
    param W, V: [H, I] ~ uniform(1/sqrt(H))
    param U: [H, H] ~ uniform(1/sqrt(H))
    param b: [H] = 0
    g = sigmoid(W @ x + U @ h[t-1] + b)      # W @ x is a slice of a fused matmul here: left alone
    h = g * tanh(V @ x + b)
    out y = h
}
""",
}

# pass → case → (spec: a file in specs/ or a key of HAND, definition, backend whose pipeline it follows)
CASES = {
    "reassociate": {"rnn": ("rnn.seq", "RNN", "numpy"), "gru": ("gru.seq", "GRU", "numpy"),
                    "named_sum": ("named_sum", "NamedSum", "numpy"),
                    "scalar_terms": ("scalar_terms", "ScalarTerms", "numpy")},
    "fuse_matmuls": {"lstm": ("lstm.seq", "LSTM", "numpy"), "gru": ("gru.seq", "GRU", "numpy"),
                     "delay2": ("delay2.seq", "Delay2RNN", "numpy"),
                     "mixed_operands": ("mixed_operands", "MixedOperands", "numpy")},
    "lift_slices": {"lstm": ("lstm.seq", "LSTM", "numpy"), "gru": ("gru.seq", "GRU", "numpy"),
                    "peephole_lstm": ("peephole_lstm.seq", "PeepholeLSTM", "numpy"),
                    "state_gate": ("state_gate", "StateGate", "numpy")},
    "fuse_multiply_add": {"peephole_lstm": ("peephole_lstm.seq", "PeepholeLSTM", "torch"),
                          "scalar_products": ("scalar_products", "ScalarProducts", "torch"),
                          "bahdanau": ("attention.seq", "BahdanauDecoder", "torch"),
                          "weighted_sums": ("weighted_sums", "WeightedSums", "torch")},
    "fuse_lstm_step": {"bahdanau": ("attention.seq", "BahdanauDecoder", "torch"),
                       "lstm_steps": ("lstm_steps", "LstmSteps", "torch"),
                       "lstm_misses": ("lstm_misses", "LstmMisses", "torch")},
    "sigmoid_via_tanh": {"lstm": ("lstm.seq", "LSTM", "numpy"), "gru": ("gru.seq", "GRU", "numpy"),
                         "shared_bias": ("shared_bias", "SharedBias", "numpy"),
                         "sliced_gate": ("sliced_gate", "SlicedGate", "numpy")},
    "hoist": {"rnn": ("rnn.seq", "RNN", "numpy"), "lstm_torch": ("lstm.seq", "LSTM", "torch"),
              "bahdanau": ("attention.seq", "BahdanauDecoder", "numpy"),
              "sentiment": ("tasks.seq", "Sentiment", "numpy")},
    "unroll": {"rnn": ("rnn.seq", "RNN", "numpy"), "delay2": ("delay2.seq", "Delay2RNN", "numpy")},
    "mask_lengths": {"rnn": ("rnn.seq", "RNN", "numpy"), "delay2": ("delay2.seq", "Delay2RNN", "numpy"),
                     "lstm": ("lstm.seq", "LSTM", "numpy"),
                     "bahdanau": ("attention.seq", "BahdanauDecoder", "numpy")},
    "dropout": {"drop_rnn": ("dropout_cell", "DropRNN", "numpy"),
                "drop_bias": ("dropout_param", "DropBias", "numpy")},
    "split_steps": {"translate": ("tasks.seq", "Translate", "numpy"),
                    "attn_translate": ("attention.seq", "AttnTranslate", "numpy"),
                    "charlm": ("tasks.seq", "CharLM", "numpy")},
    "given_states": {"translate": ("tasks.seq", "Translate", "numpy"),
                     "stacked": ("stacked.seq", "StackedTagger", "numpy")},
    "last_state": {"sentiment": ("tasks.seq", "Sentiment", "numpy"),
                   "attn_translate": ("attention.seq", "AttnTranslate", "numpy"),
                   "last_mixed": ("last_mixed", "LastMixed", "numpy")},
}


def callee_states(d) -> dict:
    """{state: (type, initial value)} of the cell a call node runs, found among the bundled specs."""
    for spec in ("lstm.seq", "attention.seq", "gru.seq", "rnn.seq"):
        p = program(spec)
        if d["callee"] in p.definitions:
            g = p.specialize(d["callee"], {k: v.value for k, v in d["sizes"].items()})
            return {s: (g.nodes[s]["type"], g.nodes[s]["init"]) for s in states(g)}
    raise AssertionError(f"no bundled spec defines {d['callee']}")


def in_stable_order(u, g):
    """`u` with its shared nodes (step None) first, in `g`'s order. `unroll` adds them in the
    order of a set, which changes with PYTHONHASHSEED, and `to_text` breaks ties by that order."""
    import networkx as nx

    index = {n: i for i, n in enumerate(g.nodes)}
    order = sorted(u.nodes, key=lambda n: (0, index[n]) if u.nodes[n].get("step", 0) is None else (1, 0))
    out = nx.MultiDiGraph(**u.graph)
    out.add_nodes_from((n, u.nodes[n]) for n in order)
    out.add_edges_from(u.edges(keys=True, data=True))
    return out


@functools.lru_cache(maxsize=None)
def program(spec: str):
    return seqdsl.load(HAND[spec]) if spec in HAND else seqdsl.load(SPECS / spec)


def pipeline_input(pass_name: str, spec: str, definition: str, backend: str):
    """The specialised IR of `definition` just before `pass_name` runs in `backend`'s pipeline
    (`seqdsl.passes.optimize`: PIPELINE, the backend's own passes, hoist). `unroll` (the
    renderer's) and `mask_lengths` (the driver's, before the pipeline) take the specialised IR itself."""
    g = program(spec).specialize(definition)
    verify(g)
    if pass_name in ("unroll", "mask_lengths", "dropout", "split_steps", "given_states", "last_state",
                     "fuse_lstm_step"):
        return g
    for p in (*PIPELINE, *BACKEND_PASSES[backend], hoist):
        if p.__name__ == pass_name:
            return g
        g = p(g)
        verify(g)
    raise AssertionError(f"{pass_name} is not in the {backend} pipeline")


def fixture_header(pass_name: str, case: str) -> str:
    spec, definition, backend = CASES[pass_name][case]
    where = f"HAND[{spec!r}] in tests/test_pass_fixtures.py" if spec in HAND else f"specs/{spec}"
    before = {"unroll": "the specialised IR, as the renderer unrolls it",
              "mask_lengths": "the specialised IR, as the driver masks it for lengths",
              "dropout": "the specialised IR, as the driver makes it for training",
              "split_steps": "the specialised IR, as the driver splits it for generation",
              "given_states": "the specialised IR, as the driver makes it for a call given run states",
              "last_state": "the specialised IR, as the driver compiles a model",
              "fuse_lstm_step": "the specialised IR, as the torch step module's first pass takes it"}.get(
                  pass_name, f"the {backend} pipeline's IR just before {pass_name}")
    return (f"# {definition} from {where}: {before}\n"
            "# made by tests/test_pass_fixtures.py (SEQDSL_ACCEPT=1 rewrites it)\n")


def write_inputs() -> None:
    """Rewrite the `.in.ir` of every case in CASES (run by the tests with SEQDSL_ACCEPT=1)."""
    for pass_name, cases in CASES.items():
        for case, (spec, definition, backend) in cases.items():
            text = to_text(pipeline_input(pass_name, spec, definition, backend))
            path = FIXTURES / pass_name / f"{case}.in.ir"
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")  # pytest -n: workers may both write
            tmp.write_text(fixture_header(pass_name, case) + text, encoding="utf-8")
            os.replace(tmp, path)


def fixtures() -> list:
    found = {(p.parent.name, p.name[: -len(".in.ir")]) for p in FIXTURES.glob("*/*.in.ir")}
    return sorted(found | {(p, c) for p, cases in CASES.items() for c in cases})


@pytest.fixture(scope="module")
def inputs():
    if os.environ.get("SEQDSL_ACCEPT"):
        write_inputs()


@pytest.mark.parametrize("pass_name,case", fixtures(), ids=[f"{p}/{c}" for p, c in fixtures()])
def test_pass_fixture(inputs, pass_name, case):
    assert pass_name in PASSES, f"tests/golden/passes/{pass_name}/ names no pass in PASSES"
    path = FIXTURES / pass_name / f"{case}.in.ir"
    if not path.exists():
        pytest.fail(f"missing {path}; run `SEQDSL_ACCEPT=1 .venv/bin/python -m pytest tests/test_pass_fixtures.py`")
    g = from_text(path.read_text(encoding="utf-8"), file=str(path.relative_to(ROOT)))
    out = PASSES[pass_name](g)
    verify(out)
    golden(f"passes/{pass_name}/{case}.out.ir", to_text(out))


def test_every_pass_has_fixtures():
    modules = {p.stem for p in (ROOT / "seqdsl" / "passes").glob("*.py") if p.stem != "__init__"}
    assert modules == set(PASSES)
    assert all(2 <= len(CASES[p]) <= 4 for p in PASSES)


# ---- the text form reads back, before and after every pass ------------------------------------

def same_lines(a: str, b: str) -> bool:
    """The same nodes, edges and attributes. `to_text` breaks ties between independent nodes by
    creation order, which the text does not hold, so a pass over a graph read back may print
    its nodes in another (equally valid) order."""
    return sorted(a.splitlines()) == sorted(b.splitlines())


def definitions() -> list:
    """(spec file, definition name, graph) for every definition at the top level of each spec."""
    return [(f, name, d.graph) for f in SPEC_FILES for name, d in program(f.name).definitions.items()
            if d.file == str(f)]


@pytest.mark.parametrize("backend", sorted(BACKEND_PASSES))
def test_text_round_trips_through_every_pass(backend):
    defs = definitions()
    assert len(defs) >= len(SPEC_FILES)
    for f, name, g in defs:
        for p in (*PIPELINE, *BACKEND_PASSES[backend], hoist, None):
            text = to_text(g)
            back = from_text(text)
            assert to_text(back) == text, f"{f.name} {name}: the text of the IR before {p} does not read back"
            if p is None:
                break
            after = p(g)
            assert same_lines(to_text(p(back)), to_text(after)), f"{f.name} {name}: {p.__name__} differs"
            g = after
        if g.graph["kind"] == "cell":
            text = to_text(unroll(g, 2))
            assert to_text(from_text(text)) == text


def test_golden_ir_files_read_back():
    from seqdsl.ir_parse import graphs_from_text

    for path in sorted((GOLDEN / "ir").glob("*.ir")):
        text = path.read_text(encoding="utf-8")
        assert "".join(to_text(g) + "\n" for g in graphs_from_text(text, file=path.name)) == text

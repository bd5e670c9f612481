"""Bad specs, one per error class: (id, source, line, col, message fragment).

Each source is a complete file; `line`/`col` is where the error must point.
"""

CELL = """cell C(I = 4, H = 8) {{
    in x: [I]
    state h: [H] = zeros
    param W: [H, I]
    param U: [H, H]
{body}
    out y = h
}}
"""


def cell(body: str) -> str:
    return CELL.format(body=body)


# a cell with two per-step inputs, run in a model (the run is on line 11)
TWO_INPUTS = """cell M2(I = 2) {{
    in x: [I]
    in mask: []
    state h: [I]
    h = mask * x + h[t-1]
    out y = h
}}
model M() {{
    in w: seq<int>
    in m: seq[]
{run}
    out y = r.y
}}
"""

# a cell with two memories, run in a model (the run is on line 10)
TWO_MEMORIES = """cell A2(H = 2) {{
    in x: [H]
    memory m1: seq[H]
    memory m2: seq[H]
    out y = x + sum(m1) + sum(m2)
}}
model M() {{
    in w: seq<int>
    e = embed(w, 5, 2)
{run}
    out y = r.y
}}
"""

# a one-input cell with a state, run in a model (the run is on line 10)
ONE_STATE = """cell R(I = 2) {{
    in x: [I]
    state h: [I]
    h = x + h[t-1]
    out y = h
}}
model M() {{
    in w: seq<int>
    in v: [2]
{run}
    out y = r.y
}}
"""


CASES = [
    # ---- syntax ---------------------------------------------------------------------
    ("syntax-missing-paren", "cell C(I {\n}\n", 1, 10, "unexpected '{'"),
    ("syntax-unclosed-expr", "cell C() {\n    x = (1 +\n}\n", 2, 13, "unexpected end of line"),
    ("syntax-bad-char", "cell C() {\n    x = 1 $ 2\n}\n", 2, 11, "unexpected character '$'"),
    ("syntax-bad-index", cell("    h = tanh(W @ x + U @ h[i])"), 6, 28, "unexpected 'i'"),
    ("syntax-two-values", "cell C() {\n    x = 1 2\n}\n", 2, 11, "unexpected '2'"),
    ("syntax-eof", "cell C() {\n    in x: [3]\n", 2, 14, "unexpected end of file"),
    ("syntax-keyword-as-name", "cell C() {\n    in for: [3]\n}\n", 2, 8, "'for' is reserved"),
    # ---- encoding and limits ----------------------------------------------------------
    ("reserved-size", "block Blk(len = 2) {\n    in x: seq[len]\n    out y = x\n}\n", 1, 11, "'len' is reserved"),
    ("symbolic-shape-mismatch", "cell C(I, H) {\n    in x: [I]\n    param W: [H, H]\n    out y = W @ x\n}\n", 4, 13,
     "shape mismatch in matmul: shared[H, H] @ [I]"),
    ("bidi", "cell C() {\n    # evil \u202e comment\n}\n", 2, 12, "bidirectional control character U+202E"),
    ("control-char", "cell C() {\x01\n}\n", 1, 11, "control character U+0001"),
    ("nesting", "cell C() {\n    x = " + "(" * 80 + "1" + ")" * 80 + "\n}\n", 2, 72,
     "brackets nest deeper than 64"),
    ("expr-depth", "cell C() {\n    in x: [3]\n    out y = x" + " + x" * 300 + "\n}\n", 3, 13,
     "expression nests deeper than 200"),
    # ---- names ------------------------------------------------------------------------
    ("unknown-name", cell("    h = tanh(W @ x + U @ hh[t-1])"), 6, 26, "unknown name 'hh'"),
    ("unknown-name-hint", cell("    h = tanh(Wx @ x + U @ h[t-1])"), 6, 14, "unknown name 'Wx'"),
    ("unknown-size", "cell C(I) {\n    in x: [J]\n    out y = x\n}\n", 2, 12, "unknown size 'J'"),
    ("reserved-name", "cell C() {\n    in len: [3]\n    out y = len\n}\n", 2, 8, "'len' is reserved"),
    ("reserved-generated", "cell C() {\n    in np: [3]\n    out y = np\n}\n", 2, 8, "'np' is reserved"),
    ("dunder-name", "cell C() {\n    in a__b: [3]\n    out y = a__b\n}\n", 2, 8, "contains '__'"),
    ("non-ascii-name", "cell C() {\n    in x: [3]\n    out y = xé\n}\n", 3, 14, "unexpected character"),
    ("duplicate-decl", "cell C(H = 2) {\n    in x: [H]\n    state x: [H]\n    x = x[t-1]\n    out y = x\n}\n",
     3, 11, "'x' is declared twice"),
    ("duplicate-param", "cell C(H = 2) {\n    in x: [H]\n    param W, W: [H, H]\n    out y = W @ x\n}\n",
     3, 14, "'W' is declared twice"),
    ("duplicate-assign", cell("    h = tanh(W @ x)\n    h = tanh(U @ h[t-1])"), 7, 5, "'h' is assigned twice"),
    ("duplicate-output", cell("    h = tanh(W @ x + U @ h[t-1])\n    out y = h"), 8, 9, "output 'y' is declared twice"),
    ("duplicate-definition", "cell C() {\n    in x: [1]\n    out y = x\n}\ncell C() {\n    in x: [1]\n    out y = x\n}\n",
     5, 6, "'C' is defined twice"),
    ("duplicate-size", "cell C(H, H) {\n    in x: [H]\n    out y = x\n}\n", 1, 11, "size 'H' is declared twice"),
    ("assign-to-input", cell("    x = W @ x\n    h = tanh(U @ h[t-1])"), 6, 5, "cannot assign to input 'x'"),
    # ---- functions --------------------------------------------------------------------
    ("unknown-function", cell("    h = tanhh(W @ x + U @ h[t-1])"), 6, 9, "unknown function 'tanhh'"),
    ("unknown-function-hint", cell("    h = sigmod(W @ x + U @ h[t-1])"), 6, 9, "did you mean 'sigmoid'"),
    ("arity", cell("    h = tanh(W @ x, U @ h[t-1])"), 6, 9, "tanh() takes 1 argument, got 2"),
    ("unknown-initializer", "cell C(H = 2) {\n    in x: [H]\n    param W: [H, H] ~ unifrom(1)\n    out y = W @ x\n}\n",
     3, 23, "unknown initializer 'unifrom'"),
    ("negative-uniform", "cell C(H = 2) {\n    in x: [H]\n    param W: [H, H] ~ uniform(-1/sqrt(H))\n"
     "    out y = W @ x\n}\n", 3, 11, "uniform() bound -1/sqrt(2) is negative (-0.707107); uniform(a) draws from "
     "[-a, a], a >= 0"),
    ("negative-normal", "cell C(H = 2) {\n    in x: [H]\n    param W: [H, H] ~ normal(1 - H)\n"
     "    out y = W @ x\n}\n", 3, 11, "normal() standard deviation 1 - 2 is negative (-1); a standard deviation is >= 0"),
    ("function-as-value", cell("    h = tanh + x"), 6, 9, "'tanh' is a function"),
    ("flag-as-value", "block Blk(D = 2, causal = true) {\n    in x: seq[D]\n    out y = x * causal\n}\n", 3, 17,
     "'causal' is a flag (true/false), not a number"),
    ("size-delayed", cell("    h = tanh(W @ x + H[t-1])"), 6, 22, "'H' is a size, the same at every step"),
    ("min-one-argument", cell("    h = min(W @ x)"), 6, 9, "min() takes 2 arguments, got 1"),
    ("clip-arity", cell("    h = clip(W @ x, 1)"), 6, 9, "clip() takes 3 arguments, got 2"),
    ("clip-value-bound", cell("    h = clip(W @ x, -1, U @ h[t-1])"), 6, 25, "clip's upper bound must be a number"),
    ("clip-size-bound", cell("    h = clip(W @ x, -H, H)"), 6, 22, "clip's lower bound must be a number, not the size 'H'"),
    ("clip-bounds-order", cell("    h = clip(W @ x, 1, -1)"), 6, 9, "clip's lower bound 1 is above its upper bound -1"),
    ("pow-value-exponent", cell("    h = (W @ x) ** h[t-1]"), 6, 20, "the exponent of '**' must be a number"),
    ("pow-zero-negative", cell("    h = (W @ x) ** (0 ** -1)"), 6, 21, "0 to a negative power"),
    ("mean-of-scores", cell("    h = W @ x\n    out s = mean(x @ x)"), 7, 13, "mean averages the features of a vector"),
    ("gelu-tokens", "model M() {\n    in w: seq<int>\n    out y = gelu(w)\n}\n", 3, 13, "gelu needs numbers"),
    # ---- shapes -----------------------------------------------------------------------
    ("matmul-mismatch", cell("    h = tanh(U @ x + U @ h[t-1])"), 6, 14, "shape mismatch in matmul: shared[8, 8] @ [4] (inner sizes 8 and 4)"),
    ("add-mismatch", cell("    h = tanh(W @ x + x)"), 6, 14, "shape mismatch in addition: [8] vs [4]"),
    ("state-type", "cell C(I = 4, H = 8) {\n    in x: [I]\n    state h: [H]\n    h = x\n    out y = h\n}\n",
     4, 9, "state 'h' is declared [8] but assigned [4]"),
    ("split-uneven", "block Blk(D = 5) {\n    in x: seq[D]\n    a, b = split(x, 2)\n    out y = a\n}\n", 3, 12,
     "cannot split seq[5] into 2 equal parts"),
    ("tokens-arith", "model M() {\n    in w: seq<int>\n    out y = w + w\n}\n", 3, 13, "cannot addition token ids"),
    ("run-input-mismatch", "cell R(I = 4) {\n    in x: [I]\n    state h: [I]\n    h = x + h[t-1]\n    out y = h\n}\n"
     "model M() {\n    in w: seq<int>\n    r = R(4) over embed(w, 10, 5)\n    out y = r.y\n}\n", 9, 19,
     "R runs over seq[4], but this is seq[5]"),
    ("from-state-mismatch", "cell R(I = 4) {\n    in x: [I]\n    state h: [I]\n    h = x + h[t-1]\n    out y = h\n}\n"
     "model M() {\n    in w: seq<int>\n    in v: [3]\n    r = R(4) over embed(w, 10, 4) from (h = v)\n    out y = r.y\n}\n",
     10, 45, "state 'h' of R is [4], but this is [3]"),
    # ---- sizes ------------------------------------------------------------------------
    ("size-zero", "cell C() {\n    in x: [0]\n    out y = x\n}\n", 2, 12, "size must be positive, got 0"),
    ("size-negative", "cell C(H = 2) {\n    in x: [H - 5]\n    out y = x\n}\n", 2, 12, "size must be positive, got -3"),
    ("size-float", "cell C() {\n    in x: [2.5]\n    out y = x\n}\n", 2, 12, "size must be a whole number"),
    ("size-huge", "cell C() {\n    in x: [99999999999]\n    out y = x\n}\n", 2, 12, "absurdly large"),
    ("number-infinite", "cell C(H = 2) {\n    in x: [H]\n    out y = x * 1e999\n}\n", 3, 17, "number 1e999 is out of range"),
    ("size-huge-product", "cell C(H = 100000) {\n    in x: [H * H]\n    out y = x\n}\n", 2, 12, "absurdly large"),
    ("param-too-many-elements", "cell C(H = 1000000) {\n    in x: [H]\n    param W: [H, H]\n    out y = W @ x\n}\n",
     3, 11, "shared[1000000, 1000000] has 1000000000000 elements; the limit is 2147483648"),
    ("size-inexact-division", "cell C(H = 5) {\n    in x: [H / 2]\n    out y = x\n}\n", 2, 12, "is not a whole number"),
    ("repeat-unbound", "model M(L) {\n    in w: seq<int>\n    x = embed(w, 5, 4)\n    repeat L {\n        x = relu(x)\n    }\n    out y = x\n}\n",
     4, 12, "repeat count L has no value"),
    # ---- recurrence -------------------------------------------------------------------
    ("algebraic-loop", cell("    a = tanh(W @ x + U @ h)\n    h = a * 2"), 6, 5,
     "algebraic loop: a (line 6) -> h (line 7) -> a (line 6)"),
    ("self-loop", cell("    h = tanh(W @ x + U @ h)"), 6, 5, "algebraic loop: h (line 6) -> h (line 6)"),
    ("delay-non-state", cell("    a = W @ x\n    h = tanh(a[t-1] + U @ h[t-1])"), 7, 14,
     "'a' is not a state; only states can be read at t-1"),
    ("kwarg-one-argument", cell("    h = tanh(v = W @ x + U @ h[t-1])"), 6, 14, "tanh() takes no keyword arguments"),
    ("positions-no-sequence-input", "model M(D = 4) {\n    in v: [D]\n    p = positions(D)\n    out y = p\n}\n", 3, 9,
     "positions() numbers the steps of a sequence input, but model M has no sequence input"),
    ("positions-only", "block B(D = 4) {\n    out y = positions(D)\n}\n", 2, 13,
     "block B has no sequence input"),
    ("delay-too-big", cell("    h = tanh(W @ x + U @ h[t-5000])"), 6, 26, "delay 5000 is larger than the limit"),
    ("delay-in-model", "model M() {\n    in w: seq<int>\n    x = embed(w, 5, 4)\n    out y = x[t-1]\n}\n", 4, 13,
     "steps only exist inside cells"),
    ("state-unassigned", "cell C(H = 2) {\n    in x: [H]\n    state h: [H]\n    out y = x\n}\n", 3, 11,
     "state 'h' is never assigned"),
    ("state-in-block", "block Blk(D = 2) {\n    in x: seq[D]\n    state h: [D]\n    out y = x\n}\n", 3, 11,
     "states belong in cells"),
    ("seq-input-in-cell", "cell C(H = 2) {\n    in x: seq[H]\n    out y = x\n}\n", 2, 11,
     "a cell's input is one step"),
    ("no-output", "cell C(H = 2) {\n    in x: [H]\n}\n", 1, 6, "cell C has no output"),
    # ---- models -----------------------------------------------------------------------
    ("unknown-cell", "model M() {\n    in w: seq<int>\n    r = LSTMM(4, 4) over embed(w, 5, 4)\n    out y = r.y\n}\n",
     3, 9, "unknown cell or block 'LSTMM'"),
    ("cell-not-run", "cell R(I = 4) {\n    in x: [I]\n    out y = x\n}\nmodel M() {\n    in v: [4]\n    out y = R(4)\n}\n",
     7, 13, "R is a cell; run it over a sequence"),
    ("unknown-field", "cell R(I = 4) {\n    in x: [I]\n    state h: [I]\n    h = x + h[t-1]\n    out y = h\n}\n"
     "model M() {\n    in w: seq<int>\n    r = R(4) over embed(w, 10, 4)\n    out y = r.z\n}\n", 10, 13,
     "R has no output or state 'z'"),
    ("too-many-sizes", "cell R(I = 4) {\n    in x: [I]\n    out y = x\n}\nmodel M() {\n    in w: seq<int>\n"
     "    r = R(4, 5) over embed(w, 10, 4)\n    out y = r.y\n}\n", 7, 9, "R takes 1 sizes (I), got 2"),
    ("over-in-cell", "cell R(I = 4) {\n    in x: [I]\n    out y = R(4) over x\n}\n", 3, 13, "runs belong in models"),
    ("memory-missing", "cell R(I = 4) {\n    in x: [I]\n    memory m: seq[I]\n    out y = sum(m) + x\n}\n"
     "model M() {\n    in w: seq<int>\n    r = R(4) over embed(w, 10, 4)\n    out y = r.y\n}\n", 8, 9,
     "R has a memory; give it one"),
    ("param-in-model", "model M() {\n    param W: [2, 2]\n    in v: [2]\n    out y = W @ v\n}\n", 2, 5,
     "a model's parameters come from"),
    # ---- several inputs, memories and states by name ------------------------------------
    ("cell-no-input", "cell C(H = 2) {\n    state h: [H]\n    h = h[t-1]\n    out y = h\n}\n", 1, 6,
     "cell C has no input"),
    ("over-plain-several-inputs", TWO_INPUTS.format(run="    r = M2(2) over embed(w, 5, 2)"), 11, 20,
     "M2 has 2 inputs (x, mask); name each one"),
    ("over-list-missing", TWO_INPUTS.format(run="    r = M2(2) over (x = embed(w, 5, 2))"), 11, 20,
     "M2 needs a value for its input 'mask'"),
    ("over-list-unknown", TWO_INPUTS.format(run="    r = M2(2) over (x = embed(w, 5, 2), msk = m)"), 11, 41,
     "did you mean 'mask'"),
    ("over-list-duplicate",
     TWO_INPUTS.format(run="    r = M2(2) over (x = embed(w, 5, 2), x = embed(w, 5, 2), mask = m)"), 11, 41,
     "input 'x' is given twice"),
    ("over-list-type", TWO_INPUTS.format(run="    r = M2(2) over (x = embed(w, 5, 2), mask = embed(w, 5, 2))"), 11, 48,
     "M2 runs over seq[] (its input 'mask'), but this is seq[2]"),
    ("over-list-unknown-one-input", ONE_STATE.format(run="    r = R(2) over (y = embed(w, 5, 2))"), 10, 20,
     "R has no input 'y'"),
    ("attend-plain-several-memories", TWO_MEMORIES.format(run="    r = A2(2) over e attend e"), 10, 29,
     "A2 has 2 memories (m1, m2); name each one"),
    ("attend-list-missing", TWO_MEMORIES.format(run="    r = A2(2) over e attend (m1 = e)"), 10, 29,
     "A2 needs a value for its memory 'm2'"),
    ("attend-list-unknown", TWO_MEMORIES.format(run="    r = A2(2) over e attend (m1 = e, m3 = e)"), 10, 38,
     "A2 has no memory 'm3'"),
    ("attend-missing-several", TWO_MEMORIES.format(run="    r = A2(2) over e"), 10, 9,
     "give them: ... attend (m1 = ..., m2 = ...)"),
    ("from-list-duplicate", ONE_STATE.format(run="    r = R(2) over embed(w, 5, 2) from (h = v, h = v)"), 10, 47,
     "state 'h' is given twice"),
    # ---- imports ----------------------------------------------------------------------
    ("import-missing", 'use "nothere.seq"\ncell C() {\n    in x: [1]\n    out y = x\n}\n', 1, 5, "no such file"),
    ("import-escape", 'use "../outside.seq"\ncell C() {\n    in x: [1]\n    out y = x\n}\n', 1, 5,
     "leaves the spec's folder"),
    ("import-not-seq", 'use "data.txt"\ncell C() {\n    in x: [1]\n    out y = x\n}\n', 1, 5, "imports name a .seq file"),
]

"""Random well-typed seqdsl programs (hypothesis strategies), written as `.seq` text.

In:  hypothesis draws.
Out: `Spec(text, name, kind, features)`: a spec nobody wrote by hand, that loads and checks.
     `cells()` draws a cell: 1–3 states with delays 1–3, an input, optional memories,
     parameters, and a random expression DAG over every op of the language (activations,
     `@` in all its forms, `+ - * /` with numbers on either side, `split`/`concat` of leaves
     and of intermediates, `softmax`/`sum` over a memory, `linear`, `layernorm`, `gelu`, `softplus`,
     `abs`, `min`, `max`, `clip`, `**`, `sqrt`, `mean`, sizes as numbers), values
     with several readers, intermediates exposed as outputs and states that are the direct
     result of any op. `near_standard()` draws torch's RNN/LSTM/GRU with one term added,
     removed or swapped (or none). `models()` wires random cells and blocks (`over`,
     `from`, `attend`, `reversed`, `bidirectional`, `repeat`, `embed`, `onehot`,
     `linear`, `layernorm`, `attention`). Names may be drawn from `COLLIDING`, names that
     the generated code uses itself.

Every draw is small (sizes 1–4, a handful of equations) so that one program checks in well
under a second; hypothesis shrinks a failure to a minimal spec. Values stay bounded:
`exp` and `log` and divisions only see arguments that keep them finite, and so do `sqrt` and `**`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from hypothesis import strategies as st

# names that a generator of Python code is likely to use for itself
COLLIDING = ["reverse", "x_in", "pre", "init", "seqs", "DTYPE", "g_h", "i_", "h_d1", "mp", "buf", "loop",
             "out_y", "c1", "h1", "W_T", "grad", "d_outs", "G", "backward", "forward", "PARAMS", "KIND",
             "np_", "torch_", "x_", "y_", "fn", "args", "e", "k", "n", "s", "z", "u",
             # the shapes of codegen's names, helpers without their "_", and names ending in "_"
             # (lowering joins `h_` and `y` into a node `h__y`)
             "memory_", "P_", "ts", "gB_h", "gT_h", "gO_h", "h_tape", "h_buf", "cell_C", "cell_Enc", "mm", "full",
             "empty", "sigtanh", "h_", "W_", "v_"]


@dataclass
class Spec:
    text: str
    name: str
    kind: str
    features: set = field(default_factory=set)
    # per definition: steps the program needs (delays), and the sizes given
    colliding: bool = False
    states: dict = field(default_factory=dict)  # cells: state name -> dim

    def __str__(self) -> str:
        return self.text


class Names:
    """Fresh value names; some drawn from COLLIDING when `collide` is on."""

    def __init__(self, draw, collide: bool):
        self.draw, self.collide, self.used, self.k = draw, collide, set(), 0

    def __call__(self, base: str) -> str:
        if self.collide and self.draw(st.integers(0, 3)) == 0:
            cand = self.draw(st.sampled_from(COLLIDING))
            if cand not in self.used:
                self.used.add(cand)
                return cand
        while True:
            self.k += 1
            name = f"{base}{self.k}"
            if name not in self.used:
                self.used.add(name)
                return name


ACTS = ["tanh", "sigmoid", "relu"]


class CellGen:
    """Builds one cell's text from draws. Dims are written with the cell's size names."""

    def __init__(self, draw, name: str, collide: bool, io: dict | None = None, state_base: str = "s"):
        self.draw = draw
        self.state_base = state_base
        self.numeric = io is not None
        self.name = name
        self.names = Names(draw, collide)
        self.features: set = set()
        d = draw
        # sizes: I (input), H (first state / output), K (a free size)
        if io:
            self.sizes = dict(io)
        else:
            self.sizes = {"I": d(st.integers(1, 4)), "H": d(st.integers(1, 4))}
        self.sizes.setdefault("K", d(st.integers(1, 3)))
        self.dimtext = {}  # value → a way to write it
        self.decls: list = []
        self.params: list = []
        self.eqs: list = []  # (text, names assigned)
        self.outs: list = []
        # pool of available values: (text, kind, dim) kind in vec/scal/seq/seqs (seq[]), dim an int
        self.pool: list = []
        self.pending_states: dict = {}  # state name -> dim (not yet assigned)
        self.state_dims: dict = {}
        self.max_delay: dict = {}

    # ---- dims ------------------------------------------------------------------------
    def dim_text(self, v: int) -> str:
        if self.numeric:  # a cell run by a model is also lowered with symbolic sizes: keep dims plain
            return str(v)
        opts = [k for k, s in self.sizes.items() if s == v]
        opts += [f"2*{k}" for k, s in self.sizes.items() if 2 * s == v]
        opts += [f"{a} + {b}" for a, sa in self.sizes.items() for b, sb in self.sizes.items() if sa + sb == v and a < b]
        opts.append(str(v))
        return self.draw(st.sampled_from(opts))

    def some_dim(self) -> int:
        return self.draw(st.sampled_from(sorted(set(self.sizes.values()) | {1, 2})))

    # ---- leaves ------------------------------------------------------------------------
    def param(self, shape: tuple, base: str = "W", init: str | None = None) -> str:
        name = self.names(base)
        dims = ", ".join(self.dim_text(v) for v in shape)
        if init is None:
            init = self.draw(st.sampled_from(["", "", " ~ uniform(0.5)", " ~ normal(0.3)", " = 0.1", " = ones",
                                              " ~ uniform(1/sqrt(K + 1))"]))
        if init == " = ones" and len(shape) == 2:
            init = " ~ uniform(0.4)"  # an all-ones matrix makes every row the same
        self.params.append(f"param {name}: [{dims}]{init}")
        return name

    def leaf(self, kind: str, dim: int) -> str:
        """An existing value of this kind/dim, or a new parameter-based one."""
        cands = [t for t, k, dm in self.pool if k == kind and dm == dim]
        delayed = []
        if kind == "vec":
            for s, sd in self.state_dims.items():
                if sd == dim:
                    k = self.draw(st.integers(1, 3))
                    self.max_delay[s] = max(self.max_delay.get(s, 0), k)
                    delayed.append(f"{s}[t-{k}]")
        choice = self.draw(st.integers(0, 9))
        if delayed and choice < 3:
            return self.draw(st.sampled_from(delayed))
        if cands and choice < 8:
            return self.draw(st.sampled_from(cands))
        if delayed:
            return delayed[0]
        if kind == "vec":
            src = self.draw(st.sampled_from(["x"] + ([] if not self.has("x") else [])))
            _ = src
            W = self.param((dim, self.sizes["I"]))
            self.features.add("matmul_param_vec")
            return f"({W} @ x)"
        if kind == "scal":
            v = self.param((self.sizes["I"],), "v")
            return f"({v} @ x)"
        raise AssertionError(kind)

    def has(self, name) -> bool:
        return any(t == name for t, _, _ in self.pool)

    # ---- expressions -------------------------------------------------------------------
    def vec(self, dim: int, depth: int) -> str:
        d = self.draw
        if depth <= 0:
            return self.leaf("vec", dim)
        form = d(st.integers(0, 23))
        sub = lambda: self.vec(dim, depth - 1)  # noqa: E731
        if form >= 17:
            return self.vec_function(form, dim, depth)
        if form == 0:
            return self.leaf("vec", dim)
        if form == 1:
            f = d(st.sampled_from(ACTS))
            self.features.add(f)
            return f"{f}({sub()})"
        if form == 2:
            op = d(st.sampled_from(["+", "-", "*"]))
            self.features.add(f"bin{op}")
            return f"({sub()} {op} {sub()})"
        if form == 3:  # a number on either side
            num = d(st.sampled_from(["0.5", "2", "1", "1.5"]))
            op = d(st.sampled_from(["+", "-", "*"]))
            self.features.add(f"num{op}")
            return f"({num} {op} {sub()})" if d(st.booleans()) else f"({sub()} {op} {num})"
        if form == 4:  # division by something kept away from 0
            self.features.add("div")
            if d(st.integers(0, 3)) == 0:  # a number over a value
                self.features.add("num/")
                return f"(1 / (2 + tanh({sub()})))"
            den = d(st.sampled_from(["2", f"(2 + tanh({self.vec(dim, depth - 1)}))", "(1.5 + sigmoid(x @ x))"]))
            if "x @ x" in den:
                self.features.add("vecdot")
            return f"({sub()} / {den})"
        if form == 5:  # param matrix @ value
            k = self.some_dim()
            W = self.param((dim, k))
            self.features.add("matmul_param_vec")
            return f"({W} @ {self.vec(k, depth - 1)})"
        if form == 6 and dim >= 2:  # concat
            a = d(st.integers(1, dim - 1))
            self.features.add("concat")
            return f"concat({self.vec(a, depth - 1)}, {self.vec(dim - a, depth - 1)})"
        if form == 7:  # bias or diagonal weight (a declared one, or a part of a split parameter)
            shared = [t for t, k, dm in self.pool if k == "pvec" and dm == dim]
            b = d(st.sampled_from(shared)) if shared and d(st.booleans()) else self.param((dim,), "b")
            op = d(st.sampled_from(["+", "*"]))
            self.features.add("param_elementwise")
            return f"({b} {op} {sub()})" if d(st.booleans()) else f"({sub()} {op} {b})"
        if form == 8:  # vector times a per-sample scalar
            self.features.add("vec_times_scalar")
            return f"({sub()} * {self.scal(depth - 1)})"
        if form == 9:
            self.features.add("linear")
            return f"linear({self.vec(self.some_dim(), depth - 1)}, {self.dim_text(dim)})"
        if form == 10 and dim >= 2:  # over one feature layernorm is constant: its gradient is all rounding
            self.features.add("layernorm")
            # mixed with the input: a layernorm of a constant vector (a state's initial value) is all
            # rounding, and finite differences cannot follow its 1/sqrt(eps) slope
            W = self.param((dim, self.sizes["I"]), init=" ~ uniform(0.5)")  # random rows: never constant
            return f"layernorm({sub()} + {W} @ x)"
        if form == 11:
            self.features.add("exp")
            return f"exp({d(st.sampled_from(['tanh', 'sigmoid']))}({sub()}))"
        if form == 12:
            self.features.add("log")
            return f"log(1.5 + tanh({sub()}))"
        if form == 13:
            self.features.add("neg")
            return f"-{self.vec(dim, depth - 1)}" if d(st.booleans()) else f"(1 - {sub()})"
        if form == 14 and self.memories:  # attention context over a memory
            m, md = d(st.sampled_from(self.memories))
            if md == dim:
                self.features.add("attention_context")
                return f"sum({self.seqs(m, md, depth - 1)} * {m})"
        if form == 15 and self.memories:
            m, md = d(st.sampled_from(self.memories))
            if md == dim:
                self.features.add("sum_memory")
                return f"sum({d(st.sampled_from(ACTS))}({m}))"
        if form == 16:
            self.features.add("split_inline_value")
            return self.leaf("vec", dim)
        return f"{d(st.sampled_from(ACTS))}({sub()})"

    def vec_function(self, form: int, dim: int, depth: int) -> str:
        """The functions of issue 11 (gelu, softplus, abs, min, max, clip, **, sqrt, sizes as numbers,
        mean), each kept bounded and off its kinks: abs, min and max meet theirs only where a value is
        exactly 0 or two values are exactly equal (a central difference there gives torch's average:
        0 for abs, half to each side of a tie), clip's bounds are no value a state starts at, and
        `**` sees a base in (0.5, 2.5) unless its power is a whole number."""
        d = self.draw
        sub = lambda: self.vec(dim, depth - 1)  # noqa: E731
        if form == 17:
            f = d(st.sampled_from(["gelu", "softplus", "abs", "dropout"]))
            self.features.add(f)
            if f == "dropout":  # the identity at inference; tests/training_check.py runs it in training
                return f"dropout({sub()}, {d(st.sampled_from(['0.5', '0.1', '0']))}" + \
                    (", variational = true)" if d(st.booleans()) else ")")
            return f"{f}({sub()})"
        if form == 18:
            f = d(st.sampled_from(["min", "max"]))
            other = d(st.sampled_from(["vec", "num", "scal"]))
            self.features.add(f"{f}_{other}")
            b = sub() if other == "vec" else d(st.sampled_from(["0.5", "-0.25", "0"])) if other == "num" \
                else self.scal(depth - 1)
            return f"{f}({sub()}, {b})" if d(st.booleans()) else f"{f}({b}, {sub()})"
        if form == 19:
            lo, hi = d(st.sampled_from([("-0.8", "0.7"), ("-1.3", "1.1"), ("0.1", "0.9"), ("-2", "-0.3")]))
            self.features.add("clip")
            return f"clip({sub()}, {lo}, {hi})"
        if form == 20:
            k = d(st.sampled_from(["2", "3", "0.5", "-1", "1.5", "(1/3)"]))
            self.features.add("pow")
            if k in ("2", "3") and d(st.booleans()):
                return f"tanh({sub()}) ** {k}"
            return f"(1.5 + tanh({sub()})) ** {k}"
        if form == 21:  # sizes as numbers, sqrt of values and of sizes
            size = d(st.sampled_from(sorted(self.sizes)))
            self.features.add("size_number")
            return d(st.sampled_from([f"({sub()} / sqrt({size}))", f"({sub()} * {size} / ({size} + 1))",
                                      f"sqrt(1.5 + tanh({sub()}))", f"({sub()} - sqrt({self.dim_text(dim)}))"]))
        if form == 22:  # a vector centred on its mean (the feature axis)
            self.features.add("mean")
            return f"({sub()} - mean({sub()}))"
        self.features.add("scaled_dot_attention" if self.memories else "mean")
        if self.memories:
            m, md = d(st.sampled_from(self.memories))
            if md == dim:
                return f"sum(softmax({m} @ {self.vec(md, depth - 1)} / sqrt({self.dim_text(md)})) * {m})"
        return f"(mean({sub()}) * {sub()})"

    def scal(self, depth: int) -> str:
        """A per-sample scalar `[]`."""
        d = self.draw
        k = self.some_dim()
        form = d(st.integers(0, 3))
        if form == 3:
            self.features.add("mean_scalar")
            return f"mean({self.vec(k, max(0, depth))})"
        if form == 0:
            v = self.param((k,), "v")
            self.features.add("matmul_pvec_vec")
            return f"({v} @ {self.vec(k, max(0, depth))})"
        if form == 1:
            self.features.add("vecdot")
            return f"({self.vec(k, max(0, depth))} @ {self.vec(k, 0)})"
        self.features.add("scalar_act")
        v = self.param((k,), "v")
        return f"tanh({v} @ {self.vec(k, max(0, depth - 1))})"

    def seqs(self, m: str, md: int, depth: int) -> str:
        """Attention weights over memory m: a softmax of scores, seq[]."""
        d = self.draw
        form = d(st.integers(0, 2))
        if form == 0:  # dot / general score
            self.features.add("matmul_seq_vec")
            return f"softmax({m} @ {self.vec(md, depth)})"
        if form == 1:  # additive (Bahdanau)
            k = self.some_dim()
            Wq, Wk, v = self.param((k, md)), self.param((k, md)), self.param((k,), "v")
            self.features.add("additive_attention")
            return f"softmax({v} @ tanh({Wq} @ {self.vec(md, depth)} + {Wk} @ {m}))"
        self.features.add("softmax_plain")
        return f"softmax(tanh({m} @ {self.vec(md, depth)}))"

    # ---- statements ----------------------------------------------------------------------
    def build(self, n_states: int, n_eqs: int, memories: list, depth: int) -> Spec:
        d = self.draw
        sz = self.sizes
        self.memories = []
        self.decls.append(f"in x: [{self.dim_text(sz['I'])}]")
        self.pool.append(("x", "vec", sz["I"]))
        if not self.numeric and d(st.integers(0, 3)) == 0:  # a second input: a per-step mask
            self.decls.append("in mask: []")
            self.eqs.append((f"gate = mask * {self.vec(sz['H'], 0)}", ["gate"]))
            self.pool.append(("gate", "vec", sz["H"]))
            self.features.add("two_inputs")
        for mname, md in memories:
            self.decls.append(f"memory {mname}: seq[{self.dim_text(md)}]")
            self.memories.append((mname, md))
        state_names = []
        for i in range(n_states):
            s = "h" if i == 0 else self.names(self.state_base)
            dim = sz["H"] if i == 0 else self.some_dim()
            init = d(st.sampled_from(["", " = zeros", " = ones", " = 0.5", " = -0.25"]))
            self.decls.append(f"state {s}: [{self.dim_text(dim)}]{init}")
            self.state_dims[s] = dim
            state_names.append(s)
        # equations: each either a plain value, a split, or a state's update
        todo = list(state_names)
        for _ in range(n_eqs):
            kind = d(st.integers(0, 4))
            if kind == 0 and todo:
                s = todo.pop(0)
                self.eq_state(s, depth)
            elif kind == 1:
                self.eq_split(depth)
            else:
                dim = self.some_dim()
                name = self.names("v")
                self.eqs.append((f"{name} = {self.vec(dim, depth)}", [name]))
                self.pool.append((name, "vec", dim))
        for s in todo:
            self.eq_state(s, depth)
        # outputs: the first is y = h (the run's value in a model); more expose intermediates
        self.outs.append("out y = h")
        for _ in range(d(st.integers(0, 2))):
            cands = [t for t, k, _ in self.pool if k == "vec" and t != "x" and "[" not in t]
            form = d(st.integers(0, 4))
            o = self.names("o")
            vecs = [m.group(1) for m in map(re.compile(r"param (\w+): \[[^,\]]+\]").match, self.params) if m]
            if form == 0 and cands:
                self.outs.append(f"out {o} = {d(st.sampled_from(cands))}")
                self.features.add("intermediate_output")
            elif form == 1:
                s = d(st.sampled_from(state_names))
                self.outs.append(f"out {o} = {s}[t-{d(st.integers(1, 2))}]")
                self.features.add("delayed_output")
            elif form == 4:  # a number, or made of parameters alone: the same value at every step
                self.outs.append(f"out {o} = " + (f"tanh({d(st.sampled_from(vecs))}) * 2" if vecs and d(st.booleans())
                                                  else "0.5"))
                self.features.add("once_output")
            elif form == 2 and self.memories:
                m, md = d(st.sampled_from(self.memories))
                self.outs.append(f"out {o} = {self.seqs(m, md, 0)}")
                self.features.add("attention_output")
            else:
                self.outs.append(f"out {o} = {self.scal(0)}")
                self.features.add("scalar_output")
        eqs = [t for t, _ in self.eqs]
        if d(st.booleans()):  # a cell is a system of equations: any order
            eqs = d(st.permutations(eqs))
            self.features.add("shuffled")
        sizes = ", ".join(f"{k} = {v}" for k, v in self.sizes.items())
        body = self.decls + self.params + eqs + self.outs
        text = f"cell {self.name}({sizes}) {{\n" + "".join(f"    {line}\n" for line in body) + "}\n"
        return Spec(text, self.name, "cell", self.features, states=dict(self.state_dims))

    def eq_state(self, s: str, depth: int) -> None:
        d = self.draw
        dim = self.state_dims[s]
        form = d(st.integers(0, 3))
        if form == 0:  # the textbook update: act(W x + U s[t-1] + b)
            W, U, b = self.param((dim, self.sizes["I"])), self.param((dim, dim)), self.param((dim,), "b")
            act = d(st.sampled_from(ACTS))
            rhs = f"{act}({W} @ x + {U} @ {s}[t-1] + {b})"
            self.max_delay[s] = max(self.max_delay.get(s, 0), 1)
            self.features.add(f"state_{act}")
        elif form == 1:  # gated
            rhs = f"sigmoid({self.vec(dim, depth - 1)}) * {s}[t-1] + {self.vec(dim, depth - 1)}"
            self.features.add("state_gated")
        else:
            rhs = self.vec(dim, depth)
            self.features.add("state_any")
        self.eqs.append((f"{s} = {rhs}", [s]))
        self.pool.append((s, "vec", dim))

    def eq_split(self, depth: int) -> None:
        d = self.draw
        k = d(st.integers(2, 3))
        part = self.some_dim()
        names = [self.names("p") for _ in range(k)]
        src_form = d(st.integers(0, 2))
        if src_form == 0:  # split of a leaf: the input or a parameter
            if self.sizes["I"] % k == 0:
                part = self.sizes["I"] // k
                src = "x"
                self.features.add("split_input")
            else:
                src = self.param((k * part,), "b")
                self.features.add("split_param")
        elif src_form == 1 and self.memories:
            src = self.vec(k * part, depth)
            self.features.add("split_value")
        else:
            W = self.param((k * part, self.sizes["I"]))
            src = f"{W} @ x + {self.param((k * part,), 'b')}"
            if d(st.booleans()):
                U = self.param((k * part, self.sizes["H"]))
                src += f" + {U} @ h[t-1]"
                self.max_delay["h"] = max(self.max_delay.get("h", 0), 1)
            self.features.add("split_gates")
        self.eqs.append((f"{', '.join(names)} = split({src}, {k})", names))
        for n in names:
            self.pool.append((n, "pvec" if src_form == 0 and src != "x" else "vec", part))


@st.composite
def cells(draw, name: str = "C", collide: bool | None = None, io: dict | None = None, memories=None,
          state_base: str = "s") -> Spec:
    if collide is None:
        collide = draw(st.integers(0, 4)) == 0
    g = CellGen(draw, name, collide, io, state_base)
    if memories is None:
        memories = []
        for i in range(draw(st.integers(0, 2))):
            memories.append(("m" if i == 0 else f"mm{i}", draw(st.sampled_from(sorted(set(g.sizes.values()))))))
    spec = g.build(draw(st.integers(1, 3)), draw(st.integers(0, 5)), memories, draw(st.integers(0, 3)))
    spec.colliding = collide
    return spec


# ---- cells near torch's standard ones ------------------------------------------------------

RNN = """cell Near(I = {I}, H = {H}) {{
    in    x: [I]
    state h: [H] = zeros
    param W_ih: [H, I]; param W_hh: [H, H]; param b_ih, b_hh: [H]
    h = tanh(W_ih @ x + b_ih + W_hh @ h[t-1] + b_hh)
    out y = h
}}
"""
LSTM = """cell Near(I = {I}, H = {H}) {{
    in    x: [I]
    state h: [H] = zeros
    state c: [H] = zeros
    param W_ii, W_if, W_ig, W_io: [H, I]
    param W_hi, W_hf, W_hg, W_ho: [H, H]
    param b_ii, b_if, b_ig, b_io: [H]
    param b_hi, b_hf, b_hg, b_ho: [H]
    i = sigmoid(W_ii @ x + b_ii + W_hi @ h[t-1] + b_hi)
    f = sigmoid(W_if @ x + b_if + W_hf @ h[t-1] + b_hf)
    g = tanh(W_ig @ x + b_ig + W_hg @ h[t-1] + b_hg)
    o = sigmoid(W_io @ x + b_io + W_ho @ h[t-1] + b_ho)
    c = f * c[t-1] + i * g
    h = o * tanh(c)
    out y = h
}}
"""
GRU = """cell Near(I = {I}, H = {H}) {{
    in    x: [I]
    state h: [H] = zeros
    param W_ir, W_iz, W_in: [H, I]
    param W_hr, W_hz, W_hn: [H, H]
    param b_ir, b_iz, b_in: [H]
    param b_hr, b_hz, b_hn: [H]
    r = sigmoid(W_ir @ x + b_ir + W_hr @ h[t-1] + b_hr)
    z = sigmoid(W_iz @ x + b_iz + W_hz @ h[t-1] + b_hz)
    n = tanh(W_in @ x + b_in + r * (W_hn @ h[t-1] + b_hn))
    h = (1 - z) * n + z * h[t-1]
    out y = h
}}
"""
# an LSTM step written out in one z (a custom decoder's form; torch's generation step runs it as one
# cell kernel: passes/fuse_lstm_step.py)
LSTM_SPLIT = """cell Near(I = {I}, H = {H}) {{
    in    x: [I]
    state h: [H] = zeros
    state c: [H] = zeros
    param W: [4*H, I + H]
    param U: [4*H, H]
    param b: [4*H]
    z = W @ concat(x, tanh(h[t-1])) + U @ h[t-1] + b
    i, f, g, o = split(z, 4)
    c = sigmoid(f) * c[t-1] + sigmoid(i) * tanh(g)
    h = sigmoid(o) * tanh(c)
    out y = h
}}
"""
STANDARD = {"rnn": RNN, "lstm": LSTM, "gru": GRU, "lstm_split": LSTM_SPLIT}

MUTATIONS = {
    "rnn": [("+ b_hh)", "+ b_hh + b_ih)"), ("+ b_hh)", ")"), ("tanh(", "relu("), ("W_hh @ h[t-1]", "W_hh @ h[t-2]"),
            ("state h: [H] = zeros", "state h: [H] = 0.5"),
            ("    out y = h\n", "    out y = h\n    out z = W_hh @ h\n"),
            ("+ b_ih +", "- b_ih +"), ("tanh(W_ih", "sigmoid(W_ih")],
    "lstm": [("c = f * c[t-1] + i * g", "c = i * c[t-1] + f * g"), ("o = sigmoid(", "o = tanh("),
             ("h = o * tanh(c)", "h = o * tanh(c) + 0.5 * h[t-1]"), ("+ b_hg)", ")"),
             ("W_hf @ h[t-1]", "W_hi @ h[t-1]"), ("    out y = h\n", "    out y = h\n    out gate = f\n"),
             ("h = o * tanh(c)", "h = o * sigmoid(c)"), ("c = f * c[t-1]", "c = f * c[t-2]"),
             ("state c: [H] = zeros", "state c: [H] = ones"), ("+ b_ii +", "+ b_ii + b_if +")],
    "lstm_split": [("i, f, g, o = split", "i, f, o, g = split"), ("+ U @ h[t-1] + b", "+ b + U @ h[t-1] + b"),
                   ("sigmoid(i) * tanh(g)", "tanh(g) * sigmoid(i)"),
                   ("c = sigmoid(f) * c[t-1]", "c = sigmoid(f) * c[t-2]"),
                   ("    out y = h\n", "    out y = h + tanh(c)\n"),
                   ("    out y = h\n", "    out y = h\n    out gate = f\n"),
                   ("+ U @ h[t-1] + b", "+ U @ h[t-2] + b"), ("state c: [H] = zeros", "state c: [H] = 0.5"),
                   ("h = sigmoid(o) * tanh(c)", "h = sigmoid(o) * tanh(c) + 0.5 * c[t-1]")],
    "gru": [("+ b_in +", "+ b_in + b_iz +"), ("h = (1 - z) * n + z * h[t-1]", "h = z * n + (1 - z) * h[t-1]"),
            ("r * (W_hn @ h[t-1] + b_hn)", "r * (W_hn @ h[t-1]) + b_hn"), ("W_hr @ h[t-1]", "W_hz @ h[t-1]"),
            ("n = tanh(", "n = relu("), ("+ b_hz)", ")"), ("(1 - z) * n", "(1 - z) * n * 1"),
            ("    out y = h\n", "    out y = h\n    out reset = r\n"), ("z * h[t-1]\n", "z * h[t-1] + 0 * x @ x\n")],
}


@st.composite
def near_standard(draw) -> Spec:
    which = draw(st.sampled_from(sorted(STANDARD)))
    text = STANDARD[which].format(I=draw(st.integers(1, 4)), H=draw(st.integers(1, 4)))
    muts = draw(st.lists(st.sampled_from(MUTATIONS[which]), max_size=2, unique=True))
    for a, b in muts:
        text = text.replace(a, b, 1)
    return Spec(text, "Near", "cell", {f"near_{which}", f"mutations{len(muts)}"})


# ---- models and blocks ---------------------------------------------------------------------

@st.composite
def blocks(draw, name: str = "Blk") -> Spec:
    heads = draw(st.sampled_from([1, 2]))
    D = heads * draw(st.integers(1, 2)) * 2
    causal = draw(st.booleans())
    lines = ["in x: seq[D]"]
    forms = draw(st.lists(st.integers(0, 4), min_size=1, max_size=3))
    cur = "x"
    feats = {"block"}
    for i, f in enumerate(forms):
        v = f"z{i}"
        if f == 0:
            lines.append(f"q{i}, k{i}, w{i} = split(linear({cur}, 3*D), 3)")
            lines.append(f"{v} = linear(attention(q{i}, k{i}, w{i}, heads, causal), D)")
            feats.add("attention")
        elif f == 1:
            lines.append(f"{v} = layernorm({cur} + tanh(linear({cur}, D)))")
            feats.add("layernorm")
        elif f == 2:
            lines.append(f"a{i}, b{i} = split(linear({cur}, 2*D), 2)")
            lines.append(f"{v} = linear(concat(b{i} * sigmoid(a{i}), relu(a{i}) - b{i}), D)")
            feats.add("split_seq")
        elif f == 3:
            lines.append(f"param g{i}: [D] = ones")
            lines.append(f"{v} = {cur} * g{i} + 0.5")
            feats.add("param_seq")
        else:
            lines.append(f"{v} = {cur} + positions(D)")
            feats.add("positions")
        cur = v
    lines.append(f"out y = {cur}")
    text = (f"block {name}(D = {D}, heads = {heads}, causal = {str(causal).lower()}) {{\n"
            + "".join(f"    {line}\n" for line in lines) + "}\n")
    return Spec(text, name, "block", feats)


@st.composite
def models(draw) -> Spec:
    """A model wiring random cells (and sometimes a block) over a sequence."""
    E, H = draw(st.integers(2, 4)), draw(st.integers(1, 4))
    V = draw(st.integers(2, 6))
    feats: set = {"model"}
    defs = []
    enc = draw(cells(name="Enc", io={"I": E, "H": H}, memories=[], collide=False))
    defs.append(enc.text)
    feats |= {f"enc:{f}" for f in enc.features}
    attn = draw(st.booleans())
    dec = draw(cells(name="Dec", io={"I": E, "H": H}, memories=[("m", H)] if attn else [], collide=False,
                     state_base="r"))
    defs.append(dec.text)
    body = []
    src = draw(st.sampled_from(["tokens", "vectors"]))
    if src == "tokens":
        body.append("in src: seq<int>")
        x = draw(st.sampled_from(["embed(src, V, E)", "linear(onehot(src, V), E)"]))
        feats.add("embed" if "embed" in x else "onehot")
    else:
        body.append("in src: seq[E]")
        x = draw(st.sampled_from(["src", "layernorm(src)", "tanh(linear(src, E))"]))
    body.append(f"x = {x}")
    if draw(st.booleans()):
        blk = draw(blocks(name="Blk"))
        if blk.text:
            D = int(blk.text.split("D = ")[1].split(",")[0])
            defs.append(blk.text)
            body.append(f"x = linear(Blk() over linear(x, {D}), E)")
            feats |= blk.features
    direction = draw(st.sampled_from(["", " reversed", " bidirectional"]))
    body.append(f"enc = Enc(E, H) over x{direction}")
    feats.add(f"dir:{direction.strip() or 'forward'}")
    enc_out = "enc.y"
    encH = 2 * H if direction == " bidirectional" else H
    if encH != H:
        body.append("ey = linear(enc.y, H)")
        enc_out = "ey"
    if draw(st.booleans()):
        body.append("repeat 2 {")
        body.append("    x = tanh(linear(Enc(E, H) over x, E))")
        body.append("}")
        feats.add("repeat")
    start = draw(st.sampled_from(["", " from enc.final", " from (h = tanh(linear(x[last], H)))"]))
    if start == " from enc.final" and not set(dec.states) <= set(enc.states):
        start = f" from (h = {enc_out}[last])"
    if direction == " bidirectional" and start:
        start = f" from (h = {enc_out}[last])"
    if start:
        feats.add("from")
    att = f" attend {enc_out}" if attn else ""
    if draw(st.booleans()):  # a prediction read at t-1 (teacher forcing: the observed word, shifted)
        body.append(f"dec = Dec(E, H) over embed(word[t-1], V, E){start}{att}")
        body.append("out word ~ categorical(linear(dec.y, V))")
        feats.add("predict")
    else:
        body.append(f"dec = Dec(E, H) over x{start}{att}")
        body.append("out word = linear(dec.y, V)")
    if draw(st.booleans()):
        body.append("out label = linear(enc.h[last], 2)")
        feats.add("last")
    if draw(st.booleans()):
        body.append("out hs = enc.h")
        feats.add("per_step_state")
    text = "\n".join(defs) + (f"model M(V = {V}, E = {E}, H = {H}) {{\n"
                              + "".join(f"    {line}\n" for line in body) + "}\n")
    return Spec(text, "M", "model", feats)

"""The functions papers use (issue 11): clip, min, max, abs, gelu, softplus, `x ** k`, sqrt, sizes as
numbers, mean over the features. Each through the interpreter, both backends and the NumPy
gradients against an independent torch formula (float64, 1e-10), every path of
tests/differential.py, torch's conventions at the kinks, the IR text, and the errors."""

from __future__ import annotations

import numpy as np
import pytest
from differential import check_all_paths

import seqdsl
from seqdsl import interpret
from seqdsl.errors import SpecError
from seqdsl.ir import to_text
from seqdsl.ir_parse import from_text
from seqdsl.ops import Op, label

torch = pytest.importorskip("torch")
F = torch.nn.functional

# each function of the language over `u = W @ x` (and `v = V @ x`), and the same in torch
FUNCTIONS = {
    "gelu": ("gelu(u)", lambda u, v: F.gelu(u)),
    "softplus": ("softplus(3 * u)", lambda u, v: F.softplus(3 * u, threshold=1e9)),
    "abs": ("abs(u)", lambda u, v: torch.abs(u)),
    "min": ("min(u, v)", lambda u, v: torch.minimum(u, v)),
    "max": ("max(u, 0.1)", lambda u, v: torch.clamp(u, min=0.1)),
    "max_scalar": ("max(u, mean(v))", lambda u, v: torch.maximum(u, v.mean(-1, keepdim=True))),
    "clip": ("clip(u, -0.3, 0.4)", lambda u, v: torch.clamp(u, -0.3, 0.4)),
    "square": ("u ** 2", lambda u, v: u ** 2),
    "cube_neg": ("-u ** 3", lambda u, v: -(u ** 3)),
    "root": ("(2 + tanh(u)) ** 0.5", lambda u, v: (2 + torch.tanh(u)) ** 0.5),
    "inverse": ("(2 + u * u) ** -1", lambda u, v: 1 / (2 + u * u)),
    "sqrt": ("sqrt(1 + u * u)", lambda u, v: torch.sqrt(1 + u * u)),
    "size": ("u * H / sqrt(H + I)", lambda u, v: u * 5 / np.sqrt(8)),
    "mean": ("u - mean(u)", lambda u, v: u - u.mean(-1, keepdim=True)),
    "mean_scalar": ("mean(u * v)", lambda u, v: (u * v).mean(-1)),
}


def _cell(expr: str) -> str:
    return ("cell F(I = 3, H = 5) {\n    in x: [I]\n    param W, V: [H, I] ~ uniform(1)\n"
            f"    u = W @ x\n    v = V @ x\n    out y = {expr}\n}}\n")


@pytest.mark.parametrize("fn", sorted(FUNCTIONS))
def test_function_on_both_backends_matches_torch(fn):
    expr, ref = FUNCTIONS[fn]
    program = seqdsl.load(_cell(expr))
    exe = seqdsl.compile(program, backend="numpy", dtype="float64")
    exe.init_params(3)
    x = np.random.default_rng(0).standard_normal((2, 4, 3))
    W, V = (torch.from_numpy(exe.params[k]).requires_grad_(True) for k in ("W", "V"))
    want = ref(torch.from_numpy(x) @ W.T, torch.from_numpy(x) @ V.T)
    d_y = np.random.default_rng(1).standard_normal(tuple(want.shape))
    (want * torch.from_numpy(d_y)).sum().backward()
    interp, _ = interpret.run(program, "F", None, exe.params, {"x": x})
    np.testing.assert_allclose(interp["y"], want.detach().numpy(), rtol=0, atol=1e-10)
    got, _, grads = exe.value_and_grad({"x": x}, {"y": d_y})
    np.testing.assert_allclose(got["y"], want.detach().numpy(), rtol=0, atol=1e-10)
    np.testing.assert_allclose(grads["params"]["W"], W.grad.numpy(), rtol=0, atol=1e-10)
    want_v = np.zeros(V.shape) if V.grad is None else V.grad.numpy()  # v unused: its gradient is zero
    np.testing.assert_allclose(grads["params"]["V"], want_v, rtol=0, atol=1e-10)
    module = seqdsl.compile(program, backend="torch", dtype="float64")
    with torch.no_grad():
        for k, p in module.params.items():
            p.copy_(torch.from_numpy(exe.params[k]))
    out, _ = module(x=torch.from_numpy(x))
    np.testing.assert_allclose(out["y"].detach().numpy(), want.detach().numpy(), rtol=0, atol=1e-10)


SCALED_DOT = """cell Attend(E = 3, H = 4) {
    in x: [E]
    memory m: seq[H]
    state h: [H]
    param W: [H, E]
    param U: [H, H]
    q = tanh(W @ x + U @ h[t-1])
    a = softmax(m @ q / sqrt(H))
    h = gelu(sum(a * m)) + clip(q, -0.5, 0.5) - 0.1 * abs(q) ** 1.5
    out y = max(h, min(q, 0.2)) / H
    out s = mean(softplus(q)) + sqrt(2.5 + q) * H
}
"""


def test_scaled_dot_product_in_a_cell_matches_torch():
    program = seqdsl.load(SCALED_DOT)
    exe = seqdsl.compile(program, backend="numpy", dtype="float64")
    exe.init_params(1)
    rng = np.random.default_rng(2)
    x, m = rng.standard_normal((2, 5, 3)), rng.standard_normal((2, 6, 4))
    W, U = (torch.from_numpy(exe.params[k]) for k in ("W", "U"))
    h, ys = torch.zeros(2, 4, dtype=torch.float64), []
    mt = torch.from_numpy(m)
    for t in range(5):
        q = torch.tanh(torch.from_numpy(x[:, t]) @ W.T + h @ U.T)
        a = torch.softmax((mt @ q[..., None])[..., 0] / 2.0, -1)
        h = F.gelu((a[..., None] * mt).sum(1)) + torch.clamp(q, -0.5, 0.5) - 0.1 * q.abs() ** 1.5
        ys.append(torch.maximum(h, torch.clamp(q, max=0.2)) / 4)
    want = torch.stack(ys, 1).numpy()
    for backend in ("numpy", "torch"):
        out, final = _run(program, backend, exe.params, x, m)
        np.testing.assert_allclose(out["y"], want, rtol=0, atol=1e-10, err_msg=backend)
        np.testing.assert_allclose(final["h"], h.numpy(), rtol=0, atol=1e-10, err_msg=backend)
    check_all_paths(SCALED_DOT, "Attend", seed=4, steps=4)


def _run(program, backend, params, x, m):
    exe = seqdsl.compile(program, backend=backend, dtype="float64")
    if backend == "numpy":
        exe.params = params
        return exe(x=x, m=m)
    with torch.no_grad():
        for k, p in exe.params.items():
            p.copy_(torch.from_numpy(params[k]))
    out, final = exe(x=torch.from_numpy(x), m=torch.from_numpy(m))
    return ({k: v.detach().numpy() for k, v in out.items()}, {k: v.detach().numpy() for k, v in final.items()})


BLOCK = """block Norm(D = 4) {
    in x: seq[D]
    c = x - mean(x)
    n = c / sqrt(mean(c ** 2) + 0.001)
    out y = linear(gelu(linear(n, 2*D)), D) + clip(x, -1, 1) * max(x, 0) - min(abs(x), D) / D
}
model M(D = 4, V = 6) {
    in src: seq<int>
    enc = Norm(D) over embed(src, V, D)
    out o = softplus(enc) ** 3
}
"""


@pytest.mark.parametrize("name", ["Norm", "M"])
def test_blocks_and_models_on_every_path(name):
    check_all_paths(BLOCK, name, seed=5, steps=5)


def _kink(expr: str, x, z, d_y):
    """Input gradients of `y = expr` of inputs x and z: NumPy BPTT and the torch module's autograd."""
    text = f"cell K(N = {x.shape[-1]}) {{\n    in x: [N]\n    in z: [N]\n    out y = {expr}\n}}\n"
    program = seqdsl.load(text)
    _, _, grads = seqdsl.compile(program, dtype="float64").value_and_grad({"x": x, "z": z}, {"y": d_y})
    module = seqdsl.compile(program, backend="torch", dtype="float64")
    xt, zt = (torch.from_numpy(a).requires_grad_(True) for a in (x, z))
    out, _ = module(x=xt, z=zt)
    (out["y"] * torch.from_numpy(d_y)).sum().backward()
    return grads["inputs"], {"x": xt.grad.numpy(), "z": zt.grad.numpy()}


KINKS = {  # expr, x, z, torch's gradient of x, of z (at d_y = 1)
    "abs at 0": ("abs(x) + 0 * z", [0.0, -1.0, 2.0], [0.0, 0.0, 0.0], [0.0, -1.0, 1.0], [0.0, 0.0, 0.0]),
    "clip at its bounds": ("clip(x, -1, 1) + 0 * z", [-1.0, 1.0, 1.5], [0.0] * 3, [1.0, 1.0, 0.0], [0.0] * 3),
    "max ties": ("max(x, z)", [1.0, 2.0, 3.0], [1.0, 1.0, 4.0], [0.5, 1.0, 0.0], [0.5, 0.0, 1.0]),
    "min ties": ("min(x, z)", [1.0, 2.0, 3.0], [1.0, 1.0, 4.0], [0.5, 0.0, 1.0], [0.5, 1.0, 0.0]),
    "max of a number": ("max(x, 0.5) + 0 * z", [0.5, 0.0, 1.0], [0.0] * 3, [0.5, 0.0, 1.0], [0.0] * 3),
    "power 0 at 0": ("x ** 0 + z", [0.0, 2.0, -1.0], [0.0] * 3, [0.0] * 3, [1.0] * 3),
    "square at 0": ("x ** 2 + z", [0.0, 2.0, -1.0], [0.0] * 3, [0.0, 4.0, -2.0], [1.0] * 3),
}


@pytest.mark.parametrize("case", sorted(KINKS))
def test_gradients_at_kinks_follow_torch(case):
    expr, x, z, gx, gz = KINKS[case]
    x, z = (np.array(a, dtype=np.float64).reshape(1, 1, 3) for a in (x, z))
    numpy_g, torch_g = _kink(expr, x, z, np.ones((1, 1, 3)))
    for got in (numpy_g, torch_g):
        np.testing.assert_array_equal(got["x"].ravel(), gx, err_msg=case)
        np.testing.assert_array_equal(got["z"].ravel(), gz, err_msg=case)


def test_sizes_are_numbers_and_stay_symbolic_until_bound():
    text = "cell C(H) {\n    in x: [H]\n    out y = x / sqrt(H) + H\n}\n"
    g = seqdsl.load(text).main.graph
    consts = [d for _, d in g.nodes(data=True) if d["op"] == Op.CONST]
    assert [(d["value"], str(d["size"])) for d in consts] == [(None, "H"), (None, "H")]
    assert to_text(from_text(to_text(g))) == to_text(g)
    bound = seqdsl.load(text).specialize("C", {"H": 9})
    assert sorted(d["value"] for _, d in bound.nodes(data=True) if d["op"] == Op.CONST) == [9.0, 9.0]
    out, _ = seqdsl.compile(text, sizes={"H": 9}, dtype="float64")(x=np.ones((1, 2, 9)))
    np.testing.assert_allclose(out["y"], np.full((1, 2, 9), 1 / 3 + 9), atol=1e-12)


def test_ir_text_and_labels_of_the_new_ops():
    g = seqdsl.load(SCALED_DOT).main.graph
    text = to_text(g)
    assert "= clip(q, hi=0.5, lo=-0.5)" in text and "= pow(" in text and "k=1.5)" in text
    assert "= sqrt(" in text and "= mean(" in text and "= gelu(" in text and "= maximum(h, " in text
    assert to_text(from_text(text)) == text
    assert label(Op.CLIP, {"lo": -1.0, "hi": 1.0}) == "clip [-1, 1]"
    assert label(Op.POW, {"k": 2.0}) == "^2" and label(Op.GELU) == "gelu" and label(Op.SQRT) == "√"


@pytest.mark.parametrize("expr,want,k", [
    ("-x ** 2", "neg(pow(x))", 2.0),
    ("2 * x ** 2", "mul(const, pow(x))", 2.0),
    ("x ** -1", "pow(x)", -1.0),
    ("(x + x) ** 2 ** 3", "pow(add(x, x))", 8.0),
    ("x ** (1/4)", "pow(x)", 0.25),
])
def test_power_binds_tighter_than_unary_minus_and_products(expr, want, k):
    g = seqdsl.load(f"cell C(H = 2) {{\n    in x: [H]\n    out y = {expr}\n}}\n").main.graph

    def show(n):
        d = g.nodes[n]
        if d["op"] in (Op.INPUT, Op.CONST):
            return n if d["op"] == Op.INPUT else "const"
        args = sorted(g.in_edges(n, data=True), key=lambda e: e[2]["port"])
        return f"{d['op'].value}({', '.join(show(u) for u, _, _ in args)})"

    out = next(n for n, d in g.nodes(data=True) if d["op"] == Op.OUTPUT)
    (src,) = g.predecessors(out)
    assert show(src) == want
    assert [d["k"] for _, d in g.nodes(data=True) if d["op"] == Op.POW] == [k]


@pytest.mark.parametrize("body,message,hint", [
    ("out y = max(x)", "max() takes 2 arguments, got 1", "max(a, b) is elementwise"),
    ("out y = gelu(x, x)", "gelu() takes 1 argument, got 2", None),
    ("out y = clip(x, -1)", "clip() takes 3 arguments, got 2", "clip(x, lo, hi) limits x to [lo, hi]"),
    ("out y = clip(x, -1, x)", "clip's upper bound must be a number", "min(max(x, lo), hi)"),
    ("out y = clip(x, 2, 1)", "clip's lower bound 2 is above its upper bound 1", None),
    ("out y = x ** x", "the exponent of '**' must be a number", "exp(y * log(x))"),
    ("out y = x ** H", "the exponent of '**' must be a number, not the size 'H'", "x ** 0.5"),
    ("out y = x ** (1 / 0)", "the exponent of '**': division by zero", None),
    ("out y = x ** ((-8) ** (1/3))", "the exponent of '**': a negative number to a fractional power", None),
    ("out y = mean(x @ x)", "mean averages the features of a vector; [] has none", None),
    ("out y = sqrt(x, x)", "sqrt() takes 1 argument, got 2", None),
])
def test_errors_of_the_functions(body, message, hint):
    with pytest.raises(SpecError) as info:
        seqdsl.load(f"cell C(H = 2) {{\n    in x: [H]\n    {body}\n}}\n")
    assert info.value.message == message
    if hint:
        assert hint in info.value.hint
    assert info.value.line == 3


def test_a_flag_is_not_a_number():
    with pytest.raises(SpecError, match=r"'causal' is a flag \(true/false\), not a number"):
        seqdsl.load("block B(D = 2, causal = true) {\n    in x: seq[D]\n    out y = x * causal\n}\n")


def test_functions_of_numbers_run_in_the_module_dtype():
    """`tanh(0.5)`, `sqrt(H)`: Python numbers in generated code, which torch's functions refuse and numpy
    makes float64; both backends take them as the module's dtype."""
    text = ("cell C(H = 4) {\n    in x: [H]\n    out y = x * tanh(0.5) + sqrt(H) * abs(-2) + gelu(1) - softplus(0) "
            "+ max(1, H) + clip(3, 0, 1) + 2 ** 0.5\n}\n")
    x = np.random.default_rng(0).standard_normal((2, 3, 4))
    want = x * np.tanh(0.5) + 2 * 2 + 0.8413447460685429 - np.log(2) + 4 + 1 + np.sqrt(2)
    for dtype, tol in (("float64", 1e-12), ("float32", 1e-5)):
        out, _ = seqdsl.compile(text, dtype=dtype)(x=x.astype(dtype))
        assert out["y"].dtype == np.dtype(dtype)
        np.testing.assert_allclose(out["y"], want, rtol=0, atol=tol)
        out, _ = seqdsl.compile(text, backend="torch", dtype=dtype)(x=torch.from_numpy(x.astype(dtype)))
        assert out["y"].dtype == getattr(torch, dtype)
        np.testing.assert_allclose(out["y"].detach().numpy(), want, rtol=0, atol=tol)


def test_activations_of_numbers_and_of_parameters_alone():
    """`sigmoid(0.5)` crashed both backends (a number where an array or tensor was needed)."""
    text = ("cell C(H = 4) {\n    param b: [H]\n    in x: [H]\n"
            "    out y = x * sigmoid(0.5) + sigmoid(mean(b)) + relu(-1) + exp(log(2)) + tanh(b) * gelu(mean(b))\n}\n")
    check_all_paths(text, "C", seed=6, steps=3)


DELAYED = """cell D(H = 3) {
    in x: [H]
    state h: [H]
    state c: [H] = 0.5
    h = tanh(x + max(h[t-1], x) * 0.5 + clip(c[t-2], -0.4, 0.3) + mean(h[t-1]) - abs(h[t-2]) ** 2)
    c = gelu(min(c[t-1], h)) + sqrt(1.5 + tanh(h[t-1])) + softplus(c[t-1]) * 0.1
    out y = h
    out p = h[t-1] ** 3
}
"""


@pytest.mark.parametrize("seed", [0, 1])
def test_functions_of_earlier_steps_on_every_path(seed):
    """States read at t-1 and t-2 straight into the new ops (c starts at 0.5: min ties at t = 0)."""
    check_all_paths(DELAYED, "D", seed=seed, steps=5)


def test_an_output_given_no_cotangent_adds_no_nan():
    """NumPy BPTT: an output nobody asks a gradient of contributes nothing, also where its
    derivative is infinite (sqrt and x ** 0.5 at 0, log at 0, 1/x at 0), as in torch, where it is
    not in the graph at all (0 * inf would be NaN)."""
    import numpy as np

    spec = ("cell C(I = 4) {\n    in x: [I]\n    out y = softplus(x)\n    out z = sqrt(x)\n"
            "    out p = abs(x) ** 0.5\n    out l = log(abs(x))\n    out r = 1 / x\n}\n")
    exe = seqdsl.compile(spec, dtype="float64")
    x = np.array([[[3.0, 1.0, 2.0, 0.0]]])
    with np.errstate(all="ignore"):
        _, _, grads = exe.value_and_grad({"x": x}, {"y": np.ones((1, 1, 4))})
    want = 1 / (1 + np.exp(-x))
    assert np.allclose(grads["inputs"]["x"], want, rtol=0, atol=1e-12), grads["inputs"]["x"]


def test_min_and_max_gradients_keep_the_modules_dtype():
    import numpy as np

    exe = seqdsl.compile("cell C(I = 3) {\n    in x: [I]\n    out y = max(x, 0) + min(x, x * 2)\n}\n")
    x = np.random.default_rng(0).normal(size=(2, 4, 3)).astype(np.float32)
    _, _, grads = exe.value_and_grad({"x": x}, {"y": np.ones((2, 4, 3), np.float32)})
    assert grads["inputs"]["x"].dtype == np.float32

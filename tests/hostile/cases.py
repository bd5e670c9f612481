# ruff: noqa: E501 — a data table: one case per line reads best
"""The hostile-input case table, as data: `CASES`, a list of `runner.Case`.

Classes (the `cls` field):
  a  malformed and adversarial specs (nesting, sizes, repeats, limits, initializer scales, loops)
  b  files and sources (FIFOs, devices, symlinks, empty files, odd names, path vs text, API args)
  c  command-line flags and outputs
  d  spec names that shadow the generated code's own names (refused, or equal to the reference)
  e  run-time arrays at the executable boundary
  f  weight files: loading and saving
  g  rendering

Each case names an action (actions.py) and its payload, the files to set up, and the clean
outcome it expects (runner.EXPECTED). `python tests/hostile/report.py` prints tried/clean per class.
"""

from __future__ import annotations

import dataclasses
import io
import json
import struct
import zipfile

from .runner import Case

CASES: list = []


def add(id, cls, kind, payload, expected, **kw):
    CASES.append(Case(id, cls, kind, payload, expected, **kw))


def spec_case(id, text, expected="spec_error", then=(), cls="a", name=None, sizes=None, **kw):
    """Write `text` to spec.seq and load it (by path), then run the steps in `then`."""
    files = {"spec.seq": text, **kw.pop("files", {})}
    payload = {"then": tuple(then)}
    if name:
        payload["name"] = name
    if sizes is not None:
        payload["sizes"] = sizes
    add(id, cls, "spec", payload, expected, files=files, **kw)


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


RNN = """cell RNN(I = 3, H = 4) {
    in x: [I]
    state h: [H] = zeros
    param W: [H, I]
    param U: [H, H]
    param b: [H] = 0
    h = tanh(W @ x + U @ h[t-1] + b)
    out y = h
}
"""
OK_CELL = cell("    h = tanh(W @ x + U @ h[t-1])")


def stateful(text: str) -> str:
    """A cell with a recurrence added (a state counting steps, and an output of it), so the
    case is not about stateless cells (see a-stateless-*)."""
    head, sep, rest = text.partition("\n")
    body = rest.rstrip("\n")
    assert body.endswith("}")
    return head + sep + "    state s_: [1] = zeros\n    s_ = s_[t-1] + 1\n" + body[:-1] + "    out s = s_\n}\n"


def block(body: str, d: int = 4) -> str:
    return f"block B(D = {d}) {{\n    in x: seq[D]\n    z = x\n{body}\n    out y = z\n}}\n"


def model(body: str, header: str = "D = 4") -> str:
    return RNN + f"model M({header}) {{\n    in x: seq[D]\n    z = x\n{body}\n    out y = z\n}}\n"


# =================================================================================================
# (a) malformed and adversarial specs
# =================================================================================================
spec_case("a-nest-65", "cell C() {\n    in x: [1]\n    out y = " + "(" * 65 + "x" + ")" * 65 + "\n}\n",
          match="nest")
spec_case("a-nest-100k", "cell C() {\n    in x: [1]\n    out y = " + "(" * 100_000 + "x" + ")" * 100_000 + "\n}\n",
          match="nest", max_s=5)
spec_case("a-nest-brackets-only", "[" * 200_000 + "\n", max_s=5)
spec_case("a-nest-unclosed", "cell C() {\n    in x: [1]\n    out y = " + "(" * 60 + "x\n}\n")
spec_case("a-nest-braces", "cell C() " + "{" * 5000 + "\n")
spec_case("a-expr-300-terms", "cell C() {\n    in x: [3]\n    out y = x" + " + x" * 300 + "\n}\n", match="deeper")
spec_case("a-expr-100k-terms", "cell C() {\n    in x: [3]\n    out y = x" + " + x" * 100_000 + "\n}\n",
          match="deeper", max_s=10, timeout=30)
spec_case("a-expr-product-100k", "cell C() {\n    in x: [3]\n    out y = x" + " * x" * 100_000 + "\n}\n",
          match="deeper", max_s=10, timeout=30)
spec_case("a-neg-5000", "cell C() {\n    in x: [3]\n    out y = " + "-" * 5000 + "x\n}\n", max_s=5)
spec_case("a-neg-spaced-5000", "cell C() {\n    in x: [3]\n    out y = " + "- " * 5000 + "x\n}\n", max_s=5)
spec_case("a-neg-50", stateful("cell C() {\n    in x: [3]\n    out y = " + "-" * 50 + "x\n}\n"), "ok_or_spec_error",
          then=("compile", "run"))
spec_case("a-attr-chain", "model M() {\n    in x: seq[3]\n    out y = x" + ".a" * 20_000 + "\n}\n", max_s=5)
spec_case("a-index-chain", cell("    h = tanh(W @ x + U @ h" + "[t-1]" * 5000 + ")"), max_s=5)
spec_case("a-delay-of-delay", cell("    h = tanh(W @ x + U @ h[t-1][t-1])"))
spec_case("a-call-nest-60", stateful("cell C() {\n    in x: [3]\n    out y = " + "tanh(" * 60 + "x" + ")" * 60 + "\n}\n"),
          "ok_or_spec_error", then=("compile", "run"))
spec_case("a-many-args", "cell C() {\n    in x: [1]\n    out y = concat(" + ", ".join(["x"] * 20_000) + ")\n}\n",
          "ok_or_spec_error", max_s=20, timeout=60, slow=True)
spec_case("a-many-args-tanh", "cell C() {\n    in x: [1]\n    out y = tanh(" + ", ".join(["x"] * 50_000) + ")\n}\n",
          max_s=10, timeout=30)
spec_case("a-long-name", stateful("cell C() {\n    in " + "x" * 100_000 + ": [3]\n    out y = " + "x" * 100_000 + "\n}\n"),
          "ok_or_spec_error", then=("compile",), max_s=10)

# the 1 MiB limit
_PAD = "# " + "p" * 98 + "\n"
_BIG_COMMENTS = RNN + _PAD * (((1 << 20) - len(RNN)) // len(_PAD) - 1)
spec_case("a-1mib-comments", _BIG_COMMENTS + "#" * ((1 << 20) - len(_BIG_COMMENTS) - 1) + "\n", "ok",
          then=("compile",), max_s=20, timeout=60)
spec_case("a-1mib-plus-1", _BIG_COMMENTS + "#" * ((1 << 20) - len(_BIG_COMMENTS)) + "\n", "error",
          match="spec.seq.*(limit|1 MiB|larger)")
spec_case("a-stateless-cell", "cell C(D = 2) {\n    in x: [D]\n    out y = tanh(x)\n}\n", "ok", then=("ref",))
spec_case("a-stateless-cell-param", "cell C(D = 2) {\n    in x: [D]\n    param W: [D, D]\n    out y = W @ x\n}\n", "ok",
          then=("ref",))
spec_case("a-1mib-one-line", "#" + "x" * ((1 << 20) - 2 - len(RNN)) + "\n" + RNN, "ok", max_s=20, timeout=60)
_SMALL = "cell C{i}(I = 2) {{\n    in x: [I]\n    out y = tanh(x)\n}}\n"
_MANY = "".join(_SMALL.format(i=i) for i in range(30_000))
spec_case("a-1mib-cells", _MANY[: (1 << 20) - 200].rsplit("cell ", 1)[0], "ok_or_spec_error", max_s=30, timeout=90,
          slow=True)
spec_case("a-5000-cells", "".join(_SMALL.format(i=i) for i in range(5000)), "ok_or_spec_error", max_s=20, timeout=60,
          slow=True)
spec_case("a-5000-params", "cell C(H = 2) {\n    in x: [H]\n" + "".join(f"    param p{i}: [H]\n" for i in range(5000))
          + "    out y = x\n}\n", "ok_or_spec_error", then=("compile",), max_s=30, timeout=90, slow=True)

# sizes and element counts
spec_case("a-size-2^31+1", "cell C() {\n    in x: [2147483649]\n    out y = x\n}\n", match="large|limit|range")
spec_case("a-size-1e30", "cell C() {\n    in x: [1000000000000000000000000000000]\n    out y = x\n}\n",
          match="large|limit|range")
spec_case("a-size-sci", "cell C() {\n    in x: [1e3]\n    out y = x\n}\n", "ok_or_spec_error")
spec_case("a-size-zero", "cell C() {\n    in x: [0]\n    out y = x\n}\n", match="positive")
spec_case("a-size-neg", "cell C(H = 2) {\n    in x: [H - H - 1]\n    out y = x\n}\n", match="positive")
spec_case("a-size-default-chain",
          "cell C(A = 2, Q = A*A, K = Q*Q, D = K*K, E = D*D, Z = E*E) {\n    in x: [Z]\n    out y = x\n}\n",
          match="large|limit|range")
spec_case("a-size-poly-overflow", "cell C(H = 65536) {\n    in x: [H*H*H*H]\n    out y = x\n}\n",
          match="large|limit|range")
_POLY = "(" + "+".join("AQCDEJGK") + ")"
spec_case("a-size-poly-blowup", "cell R(A = 1, Q = 1, C = 1, D = 1, E = 1, J = 1, G = 1, K = 1) {\n"
          f"    in x: [{'*'.join([_POLY] * 10)}]\n    state h: [{'*'.join([_POLY] * 10)}] = zeros\n"
          "    h = h[t-1] + x\n    out y = h\n}\nmodel M() {\n    in x: seq[1073741824]\n"
          "    r = R(1, 1, 1, 1, 1, 1, 1, 1) over x\n    out y = r.y\n}\n", match="terms|large", max_s=5)
spec_case("a-size-div-zero", "cell C(H = 4) {\n    in x: [H / 0]\n    out y = x\n}\n")
spec_case("a-size-div-sym", "cell C(H = 4) {\n    in x: [H / H]\n    out y = x\n}\n", "ok_or_spec_error")
spec_case("a-param-46340sq", "cell C() {\n    in x: [46340]\n    param W: [46340, 46340]\n    out y = W @ x\n}\n",
          match="param|element", max_s=5)
spec_case("a-param-46340sq-compile",
          "cell C() {\n    in x: [46340]\n    state h: [46340]\n    param W: [46340, 46340]\n"
          "    h = tanh(W @ x + h[t-1])\n    out y = h\n}\n", then=("compile",), match="param|element", max_s=5)
spec_case("a-param-2^31", "cell C() {\n    in x: [32768]\n    param W: [65536, 32768]\n    out y = W @ x\n}\n",
          max_s=5)
spec_case("a-params-3x2^30", stateful("cell C() {\n    in x: [32768]\n    param W1, W2, W3: [32768, 32768]\n"
          "    out y = W1 @ x + W2 @ x + W3 @ x\n}\n"), then=("compile",), match="param|element", max_s=5)
spec_case("a-embed-2^30", "model M() {\n    in w: seq<int>\n    out y = embed(w, 1073741824, 2)\n}\n",
          then=("compile",), match="param|element", max_s=5)
spec_case("a-linear-2^31", "model M() {\n    in x: seq[1]\n    out y = linear(x, 2147483648)\n}\n", max_s=5)
spec_case("a-layernorm-2^30-x4", "model M() {\n    in x: seq[1073741824]\n    out y = layernorm(x)\n}\n",
          "ok_or_spec_error", then=("compile",), max_s=5)
spec_case("a-sizes-arg-46340", RNN, sizes={"H": 46340}, then=("compile",), match="param|element", max_s=5)
spec_case("a-sizes-arg-2^31", RNN, sizes={"H": 1 << 31}, then=("compile",), max_s=5)
spec_case("a-sizes-arg-2^40", RNN, sizes={"H": 1 << 40}, match="H")
spec_case("a-sizes-arg-zero", RNN, sizes={"H": 0}, match="H")
spec_case("a-sizes-arg-neg", RNN, sizes={"H": -3}, match="H")
spec_case("a-sizes-arg-bool", RNN, "error", sizes={"H": True}, match="H")
spec_case("a-sizes-arg-float", RNN, "error", sizes={"H": 2.0}, match="H")
spec_case("a-sizes-arg-str", RNN, "error", sizes={"H": "8"}, match="H")
spec_case("a-sizes-arg-unknown", RNN, "error", sizes={"Q": 3}, match="Q")
spec_case("a-sizes-arg-none-value", RNN, "error", sizes={"H": None}, match="H")
spec_case("a-sizes-arg-not-dict", RNN, "error", sizes=[("H", 3)], match="sizes|dict|mapping")
spec_case("a-sizes-symbolic-huge", stateful("cell C(H) {\n    in x: [H]\n    param W: [H, H]\n    out y = W @ x\n}\n"),
          sizes={"H": 46340}, then=("compile",), match="param|element", max_s=5)
spec_case("a-onehot-2^31", "model M() {\n    in w: seq<int>\n    out y = onehot(w, 2147483648)\n}\n",
          "ok_or_spec_error", then=("compile",), max_s=10)

# repeat
spec_case("a-repeat-10000-tanh", block("    repeat 10000 { z = tanh(z) }"), "ok_or_spec_error", max_s=10, timeout=60,
          slow=True)
spec_case("a-repeat-10000-tanh-compile", block("    repeat 10000 { z = tanh(z) }"), "ok_or_spec_error",
          then=("compile", "run"), max_s=60, timeout=150, slow=True)
spec_case("a-repeat-3000-tanh", block("    repeat 3000 { z = tanh(z) }"), "ok_or_spec_error", max_s=10, timeout=60,
          slow=True)
spec_case("a-repeat-nested-10000", block("    repeat 10000 {\n        repeat 10000 {\n            z = tanh(z)\n"
                                         "        }\n    }"), max_s=5, match="repeat|nodes|limit")
spec_case("a-repeat-nested-4x10000", block("    repeat 10000 {\n repeat 10000 {\n repeat 10000 {\n repeat 10000 {\n"
                                           " z = tanh(z)\n }\n }\n }\n }"), max_s=5)
spec_case("a-repeat-deep-5", block("    repeat 2 {\n repeat 2 {\n repeat 2 {\n repeat 2 {\n repeat 2 {\n"
                                   " z = tanh(z)\n }\n }\n }\n }\n }"), match="deeper")
spec_case("a-repeat-linear-10000", model("    repeat 10000 { z = linear(z, D) }"), max_s=10, timeout=60,
          match="nodes|limit|repeat")
spec_case("a-repeat-runs-10000", model("    repeat 10000 { z = RNN(4, 4) over z }"), "ok_or_spec_error", max_s=15,
          timeout=60, slow=True)
spec_case("a-repeat-2^31", block("    repeat 2147483648 { z = tanh(z) }"), max_s=5)
spec_case("a-repeat-1e30", block("    repeat 1000000000000000000000000000000 { z = tanh(z) }"), max_s=5)
spec_case("a-repeat-0", block("    repeat 0 { z = tanh(z) }"))
spec_case("a-repeat-neg", block("    repeat 0 - 1 { z = tanh(z) }"))
spec_case("a-repeat-float", block("    repeat 1.5 { z = tanh(z) }"))
spec_case("a-repeat-unbound", "block B(D = 4, L) {\n    in x: seq[D]\n    z = x\n    repeat L { z = tanh(z) }\n"
          "    out y = z\n}\n", match="L")
spec_case("a-repeat-in-cell", cell("    repeat 3 { h = tanh(h) }\n    h = tanh(W @ x + U @ h[t-1])"))
spec_case("a-repeat-empty", block("    repeat 3 { }"), "ok_or_spec_error", then=("compile", "run"))
spec_case("a-repeat-outputs", block("    repeat 2 { out q = z }"), "ok_or_spec_error")

# equations: order, duplicates, loops
_SUM13 = "cell C(D = 2) {\n    in x: [D]\n    a = " + " + ".join(["x"] * 13) + "\n    a1 = tanh(x)\n" \
         "    out y = a + a1\n}\n"
spec_case("a-sum13-then-a1", stateful(_SUM13), "ok", then=("ref",))
spec_case("a-sum13-then-a1-a2", stateful(_SUM13.replace("    out y", "    a2 = a1 * a\n    out y").replace(
    "a + a1\n", "a2\n")),
          "ok", then=("ref",))
spec_case("a-temp-name-h1", stateful("cell C(D = 2) {\n    in x: [D]\n    h = tanh(x + x + x)\n    h1 = x * x\n"
          "    out y = h + h1\n}\n"), "ok", then=("ref",))
def _lastfirst(n: int) -> str:
    return stateful("cell C(D = 2) {\n    in x: [D]\n" + "".join(f"    v{i} = tanh(v{i - 1})\n" for i in range(n, 0, -1))
            + f"    v0 = x\n    out y = v{n}\n}}\n")


spec_case("a-160-last-first", _lastfirst(160), "ok", then=("ref",), timeout=30)
spec_case("a-1500-last-first", _lastfirst(1500), "ok_or_spec_error", then=("compile",), max_s=30, timeout=90, slow=True)
spec_case("a-5000-last-first", _lastfirst(5000), "ok_or_spec_error", max_s=20, timeout=60)
spec_case("a-loop-300", stateful("cell C(D = 2) {\n    in x: [D]\n" + "".join(f"    v{i} = tanh(v{(i + 1) % 300})\n"
          for i in range(300)) + "    out y = v0\n}\n"), match="algebraic loop", max_s=10)
spec_case("a-loop-3000", stateful("cell C(D = 2) {\n    in x: [D]\n" + "".join(f"    v{i} = tanh(v{(i + 1) % 3000})\n"
          for i in range(3000)) + "    out y = v0\n}\n"), match="algebraic loop|nested", max_s=10, timeout=40)
spec_case("a-loop-self", cell("    h = tanh(W @ x + U @ h)"), match="algebraic loop")
spec_case("a-loop-via-state-t0", cell("    h = tanh(W @ x + U @ h[t-0])"), match="algebraic loop")
spec_case("a-chain-5000-first-last", stateful("cell C(D = 2) {\n    in x: [D]\n    v0 = x\n" + "".join(
    f"    v{i} = tanh(v{i - 1})\n" for i in range(1, 5000)) + "    out y = v4999\n}\n"), "ok_or_spec_error",
    then=("compile",), max_s=60, timeout=120, slow=True)

# initializer scales and numbers that are not finite
for _id, _init in [("uniform-1/0", "~ uniform(1/0)"), ("normal-sqrt-neg", "~ normal(sqrt(0 - 1))"),
                   ("normal-1e308x10", "~ normal(1e308 * 10)"), ("const-1e308x10", "= 1e308 * 10"),
                   ("uniform-0/0", "~ uniform(0/0)"), ("uniform-H/0", "~ uniform(H/0)"),
                   ("uniform-sqrt-H-100", "~ uniform(sqrt(H - 100))"), ("normal-neg", "~ normal(0 - 1)"),
                   ("uniform-1e308", "~ uniform(1e308)"), ("const-neg-inf", "= 0 - 1e308 * 1e308"),
                   ("normal-1e200sq", "~ normal(1e200 * 1e200)"), ("uniform-inf-minus-inf", "~ uniform(1e308*10 - 1e308*10)")]:
    spec_case(f"a-init-{_id}", cell(f"    param V: [H] {_init}\n    h = tanh(W @ x + U @ h[t-1] + V)"),
              then=("compile", "run"), match="finite|infinite|NaN|nan|range|negative|std|scale|large")
spec_case("a-init-tiny-ok", cell("    param V: [H] ~ normal(1e-300 * 1e-300)\n    h = tanh(W @ x + U @ h[t-1] + V)"),
          "ok", then=("compile", "run"))
spec_case("a-init-symbolic-inf", stateful("cell C(H) {\n    in x: [H]\n    param V: [H] ~ uniform(1/(H - H))\n"
          "    out y = x + V\n}\n"), sizes={"H": 3}, then=("compile", "run"),
          match="finite|infinite|NaN|nan")
spec_case("a-const-expr-inf", cell("    h = tanh(W @ x + U @ h[t-1] * (1e308 * 10))"), "ok_or_spec_error",
          then=("compile", "run"))
spec_case("a-const-literal-inf", cell("    h = tanh(W @ x + U @ h[t-1] * 1e999)"), match="range|finite")
spec_case("a-state-init-1e999", "cell C() {\n    in x: [2]\n    state h: [2] = 1e999\n    h = h[t-1] + x\n"
          "    out y = h\n}\n", then=("compile", "run"), match="range|finite")
spec_case("a-state-init-neg-1e999", "cell C() {\n    in x: [2]\n    state h: [2] = -1e999\n    h = h[t-1] + x\n"
          "    out y = h\n}\n", then=("compile", "run"), match="range|finite")
spec_case("a-number-1e-999", cell("    h = tanh(W @ x + U @ h[t-1] * 1e-999)"), "ok_or_spec_error",
          then=("compile", "run"))

# delays and call syntax
spec_case("a-delay-leading-zeros", RNN.replace("h[t-1]", "h[t-0000000001]"), "ok", then=("ref",))
spec_case("a-delay-1001", cell("    h = tanh(W @ x + U @ h[t-1001])"), match="1001|limit")
spec_case("a-delay-1000", cell("    h = tanh(W @ x + U @ h[t-1000])"), "ok_or_spec_error", then=("compile", "run"),
          max_s=30, timeout=60)
spec_case("a-delay-1e30", cell("    h = tanh(W @ x + U @ h[t-1000000000000000000000000000000])"), match="limit")
spec_case("a-delay-plus", cell("    h = tanh(W @ x + U @ h[t+1])"))
spec_case("a-delay-of-input", cell("    h = tanh(W @ x[t-1] + U @ h[t-1])"), match="state")
spec_case("a-kwarg-tanh", cell("    h = tanh(v = W @ x + U @ h[t-1])"), match="keyword")
spec_case("a-kwarg-linear", "model M() {\n    in x: seq[3]\n    out y = linear(x, n = 3)\n}\n", match="keyword|argument")
spec_case("a-kwarg-dup", "block B(D = 4) {\n    in x: seq[D]\n    out y = attention(x, x, x, heads = 1, heads = 2)\n}\n",
          "ok_or_spec_error")
spec_case("a-attention-heads-0", "block B(D = 4) {\n    in x: seq[D]\n    out y = attention(x, x, x, 0)\n}\n")
spec_case("a-attention-heads-5", "block B(D = 4) {\n    in x: seq[D]\n    out y = attention(x, x, x, 5)\n}\n")
spec_case("a-attention-heads-huge", "block B(D = 4) {\n    in x: seq[D]\n    out y = attention(x, x, x, 4294967296)\n}\n")
spec_case("a-split-1e6", "block B(D = 4) {\n    in x: seq[D]\n    a, b = split(x, 1000000)\n    out y = a\n}\n")
spec_case("a-split-0", "block B(D = 4) {\n    in x: seq[D]\n    a, b = split(x, 0)\n    out y = a\n}\n")
spec_case("a-softmax-scalar", "cell C() {\n    in x: [1]\n    out y = softmax(1)\n}\n", "ok_or_spec_error",
          then=("compile", "run"))
spec_case("a-positions-huge", "block B() {\n    in x: seq[2]\n    out y = positions(2147483648)\n}\n",
          "ok_or_spec_error", then=("compile",), max_s=5)
spec_case("a-positions-no-seq-input", "model M(D = 4) {\n    in v: [D]\n    p = positions(D)\n    out y = p\n}\n",
          then=("compile", "run"))
spec_case("a-positions-only", "block B(D = 4) {\n    out y = positions(D)\n}\n", then=("compile", "run"))
spec_case("a-no-output", "cell C() {\n    in x: [1]\n}\n", match="output")
spec_case("a-no-input-cell", "cell C() {\n    state h: [2] = zeros\n    h = h[t-1] + 1\n    out y = h\n}\n",
          "ok_or_spec_error", then=("compile", "run"))
spec_case("a-unused-everything", "cell C(I = 2) {\n    in x: [I]\n    param W: [I, I]\n    out y = 1\n}\n",
          "ok_or_spec_error", then=("compile", "run"))

# encodings and odd bytes
spec_case("a-nul-byte", b"cell C() {\n    in x: [1]\x00\n    out y = x\n}\n")
spec_case("a-invalid-utf8", b"cell C() {\n    in x: [1]\n    # caf\xe9\n    out y = x\n}\n", match="UTF-8")
spec_case("a-overlong-utf8", b"cell C() {\n    # \xc0\xaf\n    in x: [1]\n    out y = x\n}\n", match="UTF-8")
spec_case("a-utf8-surrogate", b"cell C() {\n    # \xed\xa0\x80\n    in x: [1]\n    out y = x\n}\n", match="UTF-8")
spec_case("a-utf16", "cell C() {\n    in x: [1]\n    out y = x\n}\n".encode("utf-16"))
spec_case("a-utf8-bom", b"\xef\xbb\xbf" + RNN.encode(), "ok")
spec_case("a-crlf", RNN.replace("\n", "\r\n").encode(), "ok", then=("ref",))
spec_case("a-cr-only", RNN.replace("\n", "\r").encode(), "ok_or_spec_error")
spec_case("a-bidi", "cell C() {\n    # \u202e evil\n    in x: [1]\n    out y = x\n}\n", match="bidirectional")
spec_case("a-zero-width", "cell C() {\n    in x\u200b: [1]\n    out y = x\n}\n")
spec_case("a-formfeed-tabs", RNN.replace("    ", "\t\f"), "ok")
spec_case("a-line-continuation-eof", "cell C() {\n    in x: [1]\n    out y = x \\")
spec_case("a-empty-body-def", "cell C() {\n}\n", match="output|input")
spec_case("a-header-only", "cell C(\n")
spec_case("a-unicode-digits", "cell C() {\n    in x: [\u0663]\n    out y = x\n}\n")
spec_case("a-fullwidth-name", "cell C() {\n    in \uff58: [1]\n    out y = x\n}\n")
spec_case("a-1e5-semicolons", "cell C() {\n    in x: [1]" + ";" * 100_000 + "\n    out y = x\n}\n", "ok_or_spec_error",
          max_s=10)
spec_case("a-1e5-blank-lines", RNN + "\n" * 100_000, "ok", max_s=10)

# imports
_LEAF = "cell L{i}(I = 2) {{\n    in x: [I]\n    out y = x\n}}\n"
spec_case("a-use-65-files", "".join(f'use "m{i}.seq"\n' for i in range(65)),
          files={f"m{i}.seq": _LEAF.format(i=i) for i in range(65)}, match="import")
spec_case("a-use-64-files", "".join(f'use "m{i}.seq"\n' for i in range(64)) + RNN,
          "ok", files={f"m{i}.seq": _LEAF.format(i=i) for i in range(64)})
spec_case("a-use-chain-200", 'use "c0.seq"\n' + RNN,
          files={f"c{i}.seq": f'use "c{i + 1}.seq"\n' + _LEAF.format(i=i) for i in range(200)} | {
              "c200.seq": _LEAF.format(i=200)}, match="import", max_s=10)
spec_case("a-use-self", 'use "spec.seq"\n' + RNN, match="cycle")
spec_case("a-use-cycle-3", 'use "p.seq"\n' + RNN, files={"p.seq": 'use "q.seq"\n', "q.seq": 'use "spec.seq"\n'},
          match="cycle")
spec_case("a-use-parent", 'use "../x.seq"\n' + RNN, match="leaves|folder")
spec_case("a-use-absolute", 'use "/etc/passwd.seq"\n' + RNN, match="leaves|folder|no such")
spec_case("a-use-etc-passwd", 'use "/etc/passwd"\n' + RNN, match="seq")
spec_case("a-use-missing", 'use "nope.seq"\n' + RNN, match="nope.seq")
spec_case("a-use-empty-name", 'use ""\n' + RNN)
spec_case("a-use-dir", 'use "d.seq"\n' + RNN, files={"d.seq": ("dir",)}, match="d.seq")
spec_case("a-use-dotdot-inside", 'use "sub/../m.seq"\n' + RNN, "ok", files={"sub/x": "", "m.seq": _LEAF.format(i=0)})
spec_case("a-use-error-inside", 'use "bad.seq"\n' + RNN, files={"bad.seq": "cell X() {\n    out y = nope\n}\n"},
          match=r"bad\.seq:2:")
spec_case("a-use-nonutf8", 'use "bad.seq"\n' + RNN, files={"bad.seq": b"# \xff\n"}, match="UTF-8")
spec_case("a-use-2mib", 'use "big.seq"\n' + RNN, files={"big.seq": "#" * (2 << 20) + "\n"},
          match="big.seq.*(limit|1 MiB|larger)",
          max_s=5)
spec_case("a-use-duplicate-def", 'use "m.seq"\n' + RNN, files={"m.seq": RNN}, match="twice")
spec_case("a-use-symlink-escape", 'use "esc.seq"\n' + RNN, files={"esc.seq": ("symlink", "/etc/hostname")},
          match="leaves|folder|seq")
spec_case("a-use-diamond-64", "".join(f'use "m{i}.seq"\n' for i in range(60)) + RNN, "ok",
          files={f"m{i}.seq": "".join(f'use "m{j}.seq"\n' for j in range(i)) + _LEAF.format(i=i) for i in range(60)},
          max_s=15, timeout=60)
spec_case("a-use-1000-lines-same", 'use "m.seq"\n' * 1000 + RNN, "ok_or_spec_error", files={"m.seq": _LEAF.format(i=0)},
          max_s=10)
spec_case("a-use-after-def", RNN + 'use "m.seq"\n', "ok_or_spec_error", files={"m.seq": _LEAF.format(i=0)})
spec_case("a-use-many-defs-budget", "".join(f'use "m{i}.seq"\n' for i in range(20)) + RNN, "ok_or_spec_error",
          files={f"m{i}.seq": "".join(_SMALL.format(i=f"{i}_{j}") for j in range(1000)) for i in range(20)},
          max_s=30, timeout=90, slow=True)

# models running cells
spec_case("a-run-self", "model M() {\n    in x: seq[2]\n    r = M() over x\n    out y = r.y\n}\n")
spec_case("a-run-mutual", "model M() {\n    in x: seq[2]\n    r = N() over x\n    out y = r.y\n}\n"
          "model N() {\n    in x: seq[2]\n    r = M() over x\n    out y = r.y\n}\n")
spec_case("a-run-unknown", "model M() {\n    in x: seq[2]\n    r = Nope(3) over x\n    out y = r.y\n}\n", match="Nope")
spec_case("a-run-wrong-arity", RNN + "model M() {\n    in x: seq[3]\n    r = RNN(3, 4, 5, 6) over x\n    out y = r.y\n}\n")
spec_case("a-run-huge-size", RNN + "model M() {\n    in x: seq[3]\n    r = RNN(3, 46340) over x\n    out y = r.y\n}\n",
          then=("compile",), match="param|element", max_s=5)
spec_case("a-run-field-unknown", RNN + "model M() {\n    in x: seq[3]\n    r = RNN(3, 4) over x\n    out y = r.nope\n}\n",
          match="nope")

# =================================================================================================
# (b) files and sources
# =================================================================================================
add("b-fifo-load", "b", "spec", {}, "error", files={"spec.seq": ("fifo",)}, match="spec.seq", timeout=8, max_s=2)
add("b-fifo-use", "b", "spec", {}, "spec_error", files={"spec.seq": 'use "pipe.seq"\n' + RNN, "pipe.seq": ("fifo",)},
    match="pipe.seq", timeout=8, max_s=2)
add("b-devzero-symlink", "b", "spec", {}, "error", files={"spec.seq": ("symlink", "/dev/zero")}, match="spec.seq",
    timeout=8, max_s=2)
add("b-devzero-use", "b", "spec", {}, "spec_error", files={"spec.seq": 'use "z.seq"\n' + RNN,
                                                           "z.seq": ("symlink", "/dev/zero")}, match="z.seq", timeout=8)
add("b-devnull-symlink", "b", "spec", {}, "error", files={"spec.seq": ("symlink", "/dev/null")}, match="spec.seq",
    timeout=8)
add("b-devurandom-symlink", "b", "spec", {}, "error", files={"spec.seq": ("symlink", "/dev/urandom")},
    match="spec.seq", timeout=8, max_s=2)
add("b-private-chardev", "b", "spec", {}, "error", files={"spec.seq": ("chardev", 1, 5)}, match="spec.seq",
    timeout=8, max_s=2)
add("b-dev-stdin", "b", "spec", {"src": ("path", "/dev/stdin")}, "error", match="stdin", timeout=8)
add("b-proc-cmdline", "b", "spec", {"src": ("path", "/proc/self/cmdline")}, "error", match="cmdline", timeout=8)
add("b-sparse-2gib", "b", "spec", {}, "error", files={"spec.seq": ("sparse", 2 << 30)}, match="spec.seq", max_s=2)
add("b-sparse-use", "b", "spec", {}, "spec_error", files={"spec.seq": 'use "big.seq"\n' + RNN,
                                                          "big.seq": ("sparse", 2 << 30)}, match="big.seq", max_s=2)
add("b-symlink-loop", "b", "spec", {}, "error", files={"spec.seq": ("symlink", "loop.seq"),
                                                      "loop.seq": ("symlink", "spec.seq")}, match="spec.seq")
add("b-dangling-symlink", "b", "spec", {}, "error", files={"spec.seq": ("symlink", "gone.seq")}, match="spec.seq")
add("b-symlink-ok", "b", "spec", {}, "ok", files={"spec.seq": ("symlink", "real.seq"), "real.seq": RNN})
add("b-empty-load", "b", "spec", {}, "ok", files={"spec.seq": ""})
add("b-empty-main", "b", "spec", {"then": ("compile",)}, "error", files={"spec.seq": ""}, match="spec.seq")
add("b-empty-render", "b", "render", {}, "error", files={"spec.seq": ""}, match="spec.seq")
add("b-comments-only-compile", "b", "compile", {}, "error", files={"spec.seq": "# nothing here\n"}, match="spec.seq")
add("b-empty-text-compile", "b", "compile", {"src": ("text", "\n")}, "error", match="string|nothing|definition")
add("b-uses-only-compile", "b", "compile", {}, "ok", files={"spec.seq": 'use "r.seq"\n', "r.seq": RNN})
add("b-nonutf8-name-load", "b", "spec", {"src": ("pathobj", b"caf\xe9.seq")}, "ok", files={b"caf\xe9.seq": RNN})
add("b-nonutf8-name-error", "b", "spec", {"src": ("pathobj", b"caf\xe9.seq")}, "spec_error",
    files={b"caf\xe9.seq": "cell C() {\n    out y = nope\n}\n"}, match="nope")
add("b-nonutf8-name-str", "b", "spec", {"src": ("path", "caf\udce9.seq")}, "ok", files={b"caf\xe9.seq": RNN})
add("b-directory", "b", "spec", {"src": ("path", "d")}, "error", files={"d": ("dir",)}, match="d")
add("b-directory-seq", "b", "spec", {"src": ("path", "d.seq")}, "error", files={"d.seq": ("dir",)}, match="d.seq")
add("b-missing", "b", "spec", {"src": ("path", "nope.seq")}, "error", match="nope.seq")
add("b-missing-pathobj", "b", "spec", {"src": ("pathobj", "nope.seq")}, "error", match="nope.seq")
add("b-path-braces", "b", "spec", {"src": ("path", "my{dir}/rnn.seq")}, "ok", files={"my{dir}/rnn.seq": RNN})
add("b-path-braces-missing", "b", "spec", {"src": ("path", "my{dir}/rnn.seq")}, "error", match="rnn.seq")
add("b-path-newline-pathobj", "b", "spec", {"src": ("pathobj", "a\nb.seq")}, "ok", files={"a\nb.seq": RNN})
add("b-path-nul", "b", "spec", {"src": ("path", "spec\0.seq")}, "error", match="spec")
add("b-path-too-long", "b", "spec", {"src": ("path", "a" * 5000 + ".seq")}, "error", match="aaaa")
add("b-path-empty", "b", "spec", {"src": ("path", "")}, "error", match="path|file|empty|''")
add("b-path-space", "b", "spec", {"src": ("path", " spec.seq")}, "error", match="spec.seq")
add("b-oneline-text-str", "b", "spec", {"src": ("text", "cell C() { in x: [1]; out y = x }")}, "error",
    match="text=|no such file")
add("b-text-kw", "b", "spec", {"src": ("textkw", "cell C() { in x: [1]; out y = x }")}, "ok")
add("b-text-kw-bytes", "b", "spec", {"src": ("textkw", RNN.encode())}, "ok")
add("b-path-kw", "b", "api", {"scenario": "load_kw", "args": ({"path": "spec.seq"},)}, "ok", files={"spec.seq": RNN})
add("b-path-and-text-kw", "b", "api", {"scenario": "load_kw", "args": ({"path": "spec.seq", "text": RNN},)}, "error",
    files={"spec.seq": RNN}, match="path|text")
add("b-no-source", "b", "api", {"scenario": "load_kw", "args": ({},)}, "error", match="path|text|source")
add("b-multiline-text", "b", "spec", {"src": ("text", RNN)}, "ok")
add("b-text-with-braces-in-path", "b", "spec", {"src": ("text", "x{.seq\n")}, "spec_error")
add("b-bytes-source", "b", "spec", {"src": ("bytes", RNN.encode())}, "ok")
add("b-bytes-path-like", "b", "spec", {"src": ("bytes", b"spec.seq")}, "spec_error", files={"spec.seq": RNN})
add("b-int-source", "b", "spec", {"src": ("raw", 123)}, "error", match="123|int")
add("b-none-source", "b", "spec", {"src": ("raw", None)}, "error", match="None|source|path|text")
add("b-list-source", "b", "spec", {"src": ("raw", ["spec.seq"])}, "error", match="list|source")
add("b-seq-suffix-text", "b", "spec", {"src": ("path", "cell.seq")}, "error", match="cell.seq")
add("b-compile-name-123", "b", "compile", {"kw": {"name": 123}}, "error", files={"spec.seq": RNN}, match="123")
add("b-compile-name-missing", "b", "compile", {"kw": {"name": "Nope"}}, "error", files={"spec.seq": RNN}, match="Nope")
add("b-compile-name-list", "b", "compile", {"kw": {"name": ["RNN"]}}, "error", files={"spec.seq": RNN}, match="name|RNN")
add("b-compile-sizes-str", "b", "compile", {"kw": {"sizes": "H=3"}}, "error", files={"spec.seq": RNN}, match="sizes|H")
add("b-compile-sizes-huge", "b", "compile", {"kw": {"sizes": {"H": 46340}}}, "error", files={"spec.seq": RNN},
    match="param|element|H", max_s=5)
add("b-compile-backend", "b", "compile", {"kw": {"backend": "jax"}}, "error", files={"spec.seq": RNN}, match="jax")
add("b-compile-backend-none", "b", "compile", {"kw": {"backend": None}}, "error", files={"spec.seq": RNN},
    match="backend|None")
add("b-compile-dtype", "b", "compile", {"kw": {"dtype": "float16"}}, "error", files={"spec.seq": RNN}, match="float16")
add("b-compile-dtype-obj", "b", "compile", {"kw": {"dtype": float}}, "error", files={"spec.seq": RNN}, match="dtype|float")
add("b-compile-option", "b", "compile", {"kw": {"fuse": False}}, "error", files={"spec.seq": RNN}, match="fuse")
add("b-compile-positions-no-seq", "b", "compile", {"run": True}, "error",
    files={"spec.seq": "model M(D = 4) {\n    in v: [D]\n    p = positions(D)\n    out y = linear(p, 2)\n}\n"},
    match="positions|sequence|spec.seq")
add("b-program-sizes", "b", "api", {"scenario": "program_sizes", "args": ("lstm", {"H": 32})}, "ok")
add("b-program-sizes-empty", "b", "api", {"scenario": "program_sizes", "args": ("lstm", {})}, "ok")
add("b-compile-loaded-sizes", "b", "api", {"scenario": "compile_loaded", "args": ("lstm", {"H": 32}, "W_hi", (32, 32))},
    "ok")
add("b-sizes-numpy-int", "b", "api", {"scenario": "sizes_bad", "args": ({"H": __import__("numpy").int64(8)},)}, "ok")
add("b-sizes-negative-api", "b", "api", {"scenario": "sizes_bad", "args": ({"H": -8},)}, "error", match="H")
add("b-load-twice", "b", "api", {"scenario": "load_twice_same", "args": (RNN,)}, "ok")

# =================================================================================================
# (c) command line
# =================================================================================================
def cli_case(id, argv, expected="cli_error", files=None, **kw):
    add(id, "c", kw.pop("kind", "cli"), {"argv": list(argv), **kw.pop("extra", {})}, expected,
        files={"spec.seq": RNN} if files is None else files, **kw)


for _cmd in ("check", "ir", "compile", "render"):
    cli_case(f"c-{_cmd}-missing", [_cmd, "nope.seq"], match="nope.seq")
    cli_case(f"c-{_cmd}-dir", [_cmd, "d"], files={"d": ("dir",)}, match="d")
    cli_case(f"c-{_cmd}-fifo", [_cmd, "p.seq"], files={"p.seq": ("fifo",)}, match="p.seq", timeout=8)
    cli_case(f"c-{_cmd}-devzero", [_cmd, "z.seq"], files={"z.seq": ("symlink", "/dev/zero")}, match="z.seq", timeout=8)
    cli_case(f"c-{_cmd}-nonutf8", [_cmd, "spec.seq"], files={"spec.seq": b"cell C() {\n  # \xff\n}\n"},
             match=r"spec.seq:2:")
    cli_case(f"c-{_cmd}-spec-error", [_cmd, "spec.seq"], files={"spec.seq": "cell C() {\n    out y = nope\n}\n"},
             match=r"spec.seq:2:13: error")
cli_case("c-check-empty", ["check", "spec.seq"], "cli_ok", files={"spec.seq": ""})
cli_case("c-ir-empty", ["ir", "spec.seq"], "cli_ok", files={"spec.seq": ""})
cli_case("c-compile-empty", ["compile", "spec.seq"], files={"spec.seq": ""}, match="spec.seq")
cli_case("c-render-empty", ["render", "spec.seq"], files={"spec.seq": ""}, match="spec.seq")
cli_case("c-compile-empty-o", ["compile", "spec.seq", "-o", "out.py"], files={"spec.seq": ""}, match="spec.seq")
for _i, _bad in enumerate(["H", "H=", "=3", "H=abc", "H=-1", "H=0", "H=1e3", "H=99999999999999999999999", "H=2147483649",
             "1H=3", "Q=3", "H=3=4", "H=0x10", "H=1.0", "H=\u0663", "H= 3 ", "H=1_000_000_000_000", "H=+",
             "h=3", "H=\U0001d7d1"]):
    cli_case(f"c-set-{_i}-" + "".join(ch if ch.isascii() and ch.isalnum() else "_" for ch in _bad),
             ["check", "spec.seq", "--set", _bad], "cli_clean" if _bad in ("H=\u0663", "H= 3 ", "H=\U0001d7d1")
             else "cli_error", match="--set|H|Q|size")
cli_case("c-set-ok", ["check", "spec.seq", "--set", "H=5"], "cli_ok")
cli_case("c-set-twice", ["check", "spec.seq", "--set", "H=5", "--set", "H=6"], "cli_ok")
cli_case("c-set-46340", ["compile", "spec.seq", "--set", "H=46340", "-o", "out.py"], match="param|element", max_s=5,
         writes=("out.py",))
cli_case("c-set-no-value", ["check", "spec.seq", "--set"], match="--set")
for _argv, _m in [(["--frobnicate"], "frobnicate"), (["check", "spec.seq", "--frobnicate"], "frobnicate"),
                  (["chekc", "spec.seq"], "chekc"), (["check"], "file"), (["-x"], "-x"),
                  (["compile", "spec.seq", "--backend", "jax"], "jax"),
                  (["compile", "spec.seq", "--dtype", "float16"], "float16"),
                  (["compile", "spec.seq", "--def"], "--def"), (["compile", "spec.seq", "--def", "Nope"], "Nope"),
                  (["ir", "spec.seq", "--def", "123"], "123"),
                  (["render", "spec.seq", "--steps", "-1"], "steps"), (["render", "spec.seq", "--steps", "0"], "steps"),
                  (["render", "spec.seq", "--steps", "100000"], "steps"), (["render", "spec.seq", "--steps", "abc"], "steps"),
                  (["render", "spec.seq", "--steps", "1e9"], "steps"),
                  (["render", "spec.seq", "--view", "sideways"], "view|sideways"),
                  (["render", "spec.seq", "--detail", "x"], "detail"),
                  (["render", "spec.seq", "-o", "x.jpg"], "jpg"), (["render", "spec.seq", "-o", "x"], "x"),
                  (["compile", "spec.seq", "-o"], "-o|output"), (["check", "spec.seq", "nope.seq"], "nope.seq"),
                  (["check", "--", "-spec.seq"], "-spec.seq"), (["compile", "spec.seq", "extra.seq"], "extra.seq")]:
    cli_case("c-flag-" + ("_".join(a.strip("-") for a in _argv) or "none").replace("/", "_")[:60], _argv,
             match=_m or None)
cli_case("c-version", ["--version"], "cli_ok")
cli_case("c-no-arguments", [], "cli_clean")
cli_case("c-help", ["check", "--help"], "cli_ok")
# outputs
_DEVNULL, _DEVFULL = ("chardev", 1, 3), ("chardev", 1, 7)
cli_case("c-compile-o-missing-dir", ["compile", "spec.seq", "-o", "missing/dir/out.py"], "cli_ok", writes=("missing/",))
cli_case("c-compile-o-folder", ["compile", "spec.seq", "-o", "d"], files={"spec.seq": RNN, "d": ("dir",)}, match="d")
cli_case("c-compile-o-devfull", ["compile", "spec.seq", "-o", "full"], files={"spec.seq": RNN, "full": _DEVFULL},
         match="full")
cli_case("c-compile-o-devnull", ["compile", "spec.seq", "-o", "null"], files={"spec.seq": RNN, "null": _DEVNULL},
         match="null")
cli_case("c-compile-o-fifo", ["compile", "spec.seq", "-o", "p.py"], files={"spec.seq": RNN, "p.py": ("fifo",)},
         match="p.py", timeout=8)
cli_case("c-compile-o-self", ["compile", "spec.seq", "-o", "spec.seq"], match="spec.seq", keep=("spec.seq",))
cli_case("c-compile-o-imported", ["compile", "spec.seq", "-o", "r.seq"],
         files={"spec.seq": 'use "r.seq"\n', "r.seq": RNN}, match="r.seq", keep=("r.seq",))
cli_case("c-compile-o-failed-write", ["compile", "spec.seq", "-o", "out.py"],
         files={"spec.seq": RNN, "out.py": "# the previous module\n" * 10}, match="out.py", keep=("out.py",),
         kind="cli_fsize", extra={"fsize": 1500})
cli_case("c-compile-o-nul", ["compile", "spec.seq", "-o", "a\0b.py"], match="a")
cli_case("c-compile-o-ok", ["compile", "spec.seq", "-o", "out.py"], "cli_ok", writes=("out.py",))
cli_case("c-render-o-folder", ["render", "spec.seq", "-o", "d.svg"], files={"spec.seq": RNN, "d.svg": ("dir",)},
         match="d.svg")
cli_case("c-render-o-devfull", ["render", "spec.seq", "-o", "full.dot"], files={"spec.seq": RNN, "full.dot": _DEVFULL},
         match="full")
cli_case("c-render-o-fifo", ["render", "spec.seq", "-o", "p.svg"], files={"spec.seq": RNN, "p.svg": ("fifo",)},
         match="p.svg", timeout=8)
cli_case("c-render-o-failed-write", ["render", "spec.seq", "-o", "x.svg"],
         files={"spec.seq": RNN, "x.svg": "<svg>previous</svg>\n" * 20}, match="x.svg", keep=("x.svg",),
         kind="cli_fsize", extra={"fsize": 1500})
cli_case("c-render-o-missing-dir", ["render", "spec.seq", "-o", "missing/x.dot"], "cli_ok", writes=("missing/",))
cli_case("c-render-default-out", ["render", "spec.seq"], "cli_ok", writes=("out/",))
cli_case("c-render-no-dot", ["render", "spec.seq", "-o", "x.svg"], match="dot", kind="cli_nodot", writes=("x.dot",))
cli_case("c-check-many-one-bad", ["check", "spec.seq", "bad.seq"],
         files={"spec.seq": RNN, "bad.seq": "cell C() {\n    out y = nope\n}\n"}, match="bad.seq:2")
# the real entry point, in a process of its own
cli_case("c-proc-missing", ["check", "nope.seq"], kind="cli_proc", match="nope.seq", timeout=30)
cli_case("c-proc-bad-flag", ["compile", "spec.seq", "--frobnicate"], kind="cli_proc", match="frobnicate", timeout=30)
cli_case("c-proc-fifo", ["check", "p.seq"], files={"p.seq": ("fifo",)}, kind="cli_proc", match="p.seq", timeout=30)
cli_case("c-proc-devfull", ["compile", "spec.seq", "-o", "full"], files={"spec.seq": RNN, "full": _DEVFULL},
         kind="cli_proc", match="full", timeout=30)
cli_case("c-proc-spec-error", ["ir", "spec.seq"], files={"spec.seq": "cell C() {\n    out y = nope\n}\n"},
         kind="cli_proc", match=r"spec.seq:2:13", timeout=30)
cli_case("c-proc-broken-pipe", ["ir", "spec.seq"], "cli_ok", kind="cli_proc", extra={"close_stdout": True},
         timeout=30)
cli_case("c-proc-nonutf8-name", ["check", "caf\udce9.seq"], files={b"caf\xe9.seq": "cell C() {\n    out y = nope\n}\n"},
         kind="cli_proc", match="nope", timeout=30)
cli_case("c-proc-ascii-locale", ["check", "spec.seq"], files={"spec.seq": "cell C() {\n    # \u00e9\n    out y = n\u00e9\n}\n"},
         kind="cli_proc", extra={"env": {"LC_ALL": "C", "PYTHONIOENCODING": "ascii"}}, match="spec.seq", timeout=30)
cli_case("c-nonutf8-name-error", ["check", "caf\udce9.seq"],
         files={b"caf\xe9.seq": "cell C() {\n    out y = nope\n}\n"}, match="nope")

# =================================================================================================
# (d) names that shadow the generated code's own
# =================================================================================================
SHADOW = ["reverse", "x_in", "pre", "init", "seqs", "DTYPE", "T", "B", "P", "np", "torch", "g_h", "i_", "_h1",
          "h__d1", "h_d1", "out_y", "W__T", "h_2", "y_buf", "layer0", "F", "math", "state", "params", "inputs",
          "outputs", "final", "forward", "backward", "forward_grad", "PARAMS", "INPUTS", "STATES", "KIND", "NAME",
          "SIZES", "STATE_SHAPES", "rng", "tape", "buf", "steps", "x_steps", "c1", "v1", "x_T", "h_step", "nn",
          "torch_", "np_", "exp", "sigmoid", "dtype", "device", "CTX", "S", "t", "run"]


def _shadow_cell(n: str, where: str) -> str:
    if where == "eq":
        return (f"cell C(I = 3, H = 4) {{\n    in x: [I]\n    state h: [H] = zeros\n    param W: [H, I]\n"
                f"    param U: [H, H]\n    {n} = tanh(W @ x)\n    h = tanh({n} + U @ h[t-1])\n    out y = h\n}}\n")
    if where == "in":
        return (f"cell C(I = 3, H = 4) {{\n    in {n}: [I]\n    state h: [H] = zeros\n    param W: [H, I]\n"
                f"    param U: [H, H]\n    h = tanh(W @ {n} + U @ h[t-1])\n    out y = h\n}}\n")
    if where == "state":
        return (f"cell C(I = 3, H = 4) {{\n    in x: [I]\n    state {n}: [H] = zeros\n    param W: [H, I]\n"
                f"    param U: [H, H]\n    {n} = tanh(W @ x + U @ {n}[t-1])\n    out y = {n}\n}}\n")
    if where == "param":
        return (f"cell C(I = 3, H = 4) {{\n    in x: [I]\n    state h: [H] = zeros\n    param {n}: [H, I]\n"
                f"    param U: [H, H]\n    h = tanh({n} @ x + U @ h[t-1])\n    out y = h\n}}\n")
    if where == "size":
        return (f"cell C({n} = 3, H = 4) {{\n    in x: [{n}]\n    state h: [H] = zeros\n    param W: [H, {n}]\n"
                f"    param U: [H, H]\n    h = tanh(W @ x + U @ h[t-1])\n    out y = h\n}}\n")
    if where == "out":
        return (f"cell C(I = 3, H = 4) {{\n    in x: [I]\n    state h: [H] = zeros\n    param W: [H, I]\n"
                f"    param U: [H, H]\n    h = tanh(W @ x + U @ h[t-1])\n    out {n} = h\n}}\n")
    if where == "def":
        return (RNN.replace("RNN", n) + f"model M(D = 3) {{\n    in x: seq[D]\n    r = {n}(3, 4) over x\n"
                "    out y = r.y\n}\n")
    if where == "inst":
        return (RNN + f"model M(D = 3) {{\n    in x: seq[D]\n    {n} = RNN(3, 4) over x\n    out y = linear({n}.y, 2)\n}}\n")
    if where == "model-in":
        return (RNN + f"model M(D = 3) {{\n    in {n}: seq[D]\n    r = RNN(3, 4) over {n}\n    out y = r.y\n}}\n")
    if where == "block-eq":
        return (f"block Bk(D = 4) {{\n    in x: seq[D]\n    {n} = tanh(x)\n    out y = linear({n}, D)\n}}\n")
    raise ValueError(where)


KEY_NAMES = ["reverse", "x_in", "pre", "init", "seqs", "DTYPE", "T", "B", "P", "np", "torch", "g_h", "h_d1",
             "out_y", "h_2", "F", "state", "params", "forward", "PARAMS", "S", "t"]
FAST = {"eq": SHADOW[:16], "def": SHADOW[:11], "inst": ["reverse", "pre", "init", "seqs", "T", "P"]}
for _w in ("eq", "in", "state", "param", "size", "out", "def", "inst", "model-in", "block-eq"):
    for _n in (SHADOW if _w in ("eq", "in") else KEY_NAMES):
        add(f"d-{_w}-{_n}", "d", "refcheck", {}, "ok", files={"spec.seq": _shadow_cell(_n, _w)},
            slow=_n not in FAST.get(_w, ()), timeout=40)
add("d-two-defs-A-H1", "d", "refcheck", {}, "ok", files={"spec.seq": RNN.replace("RNN(I = 3, H = 4)", "A(I = 3, H = 1)")
    + RNN.replace("RNN(I = 3, H = 4)", "A_H1(I = 3, H = 4)") + "model M(D = 3) {\n    in x: seq[D]\n"
    "    a = A(3, 1) over x\n    b = A_H1(3, 4) over x\n    out y = concat(a.y, b.y)\n}\n"}, timeout=40)
add("d-two-defs-A-I3", "d", "refcheck", {}, "ok", files={"spec.seq": RNN.replace("RNN(I = 3, H = 4)", "A(I = 3, H = 4)")
    + RNN.replace("RNN(I = 3, H = 4)", "A_I3_H4(I = 3, H = 4)") + "model M(D = 3) {\n    in x: seq[D]\n"
    "    a = A(3, 4) over x\n    b = A_I3_H4(3, 4) over x\n    c = A(3, 2) over x\n"
    "    out y = concat(a.y, b.y, c.y)\n}\n"}, timeout=40)
add("d-same-cell-two-sizes", "d", "refcheck", {}, "ok", files={"spec.seq": RNN + "model M(D = 3) {\n    in x: seq[D]\n"
    "    a = RNN(3, 4) over x\n    b = RNN(3, 5) over x\n    c = RNN(3, 4) over x reversed\n"
    "    out y = concat(a.y, b.y, c.y)\n}\n"}, timeout=40)
add("d-instance-dotted-clash", "d", "refcheck", {}, "ok", files={"spec.seq": RNN + "model M(D = 3) {\n    in x: seq[D]\n"
    "    a = linear(x, 4)\n    a_linear = linear(x, 4)\n    r = RNN(4, 4) over a + a_linear\n    out y = r.y\n}\n"},
    timeout=40)
add("d-out-and-name-clash", "d", "refcheck", {}, "ok", files={"spec.seq": stateful("cell C(I = 3) {\n    in x: [I]\n"
    "    out_y = tanh(x)\n    out y = out_y\n    out out_y2 = x\n}\n")}, timeout=40)
add("d-split-names", "d", "refcheck", {}, "ok", files={"spec.seq": stateful("cell C(I = 4) {\n    in x: [I]\n"
    "    x_in, pre = split(x, 2)\n    out y = concat(pre, x_in)\n}\n")}, timeout=40)

# =================================================================================================
# (e) run-time arrays at the executable boundary
# =================================================================================================
LSTM, SENT, TRANS, BAHD = ("spec", "lstm"), ("spec", "tasks"), ("spec", "tasks"), ("spec", "attention")


def call_case(id, spec, backend, match, **p):
    kw = {k: p.pop(k) for k in ("expected", "slow", "timeout") if k in p}
    expected = kw.pop("expected", "input_error")
    add(f"e-{backend}-{id}", "e", "call", {"spec": spec, "backend": backend, **p}, expected, match=match,
        timeout=kw.pop("timeout", 20), **kw)


for _be in ("numpy", "torch"):
    _t = "tensor" if _be == "torch" else "arr"
    _f = "float32"
    call_case("rank-low", LSTM, _be, "'x'", set={"x": ("base", "x", "drop_batch")})
    call_case("rank-high", LSTM, _be, "'x'", set={"x": ("base", "x", "add_axis")})
    call_case("dim-wrong", LSTM, _be, "'x'", set={"x": (_t, (2, 4, 7), _f, 0.0)})
    call_case("dtype-int", LSTM, _be, "'x'", set={"x": (_t, (2, 4, 8), "int64", 1)})
    call_case("dtype-bool", LSTM, _be, "'x'", set={"x": ("base", "x", "bool")})
    call_case("scalar", LSTM, _be, "'x'", set={"x": ("py", 3.0)})
    call_case("none", LSTM, _be, "'x'", set={"x": ("py", None)})
    call_case("string", LSTM, _be, "'x'", set={"x": ("py", "abc")})
    call_case("missing", LSTM, _be, "'x'|x", drop=("x",))
    call_case("extra", LSTM, _be, "'z'|z", set={"z": ("base", "x")})
    call_case("batch0", LSTM, _be, "'x'|batch", set={"x": ("base", "x", "batch0")})
    call_case("steps0", LSTM, _be, "'x'|steps|length", set={"x": ("base", "x", "steps0")})
    call_case("state-unknown", LSTM, _be, "'hh'|hh", state={"hh": ("base", "x")})
    call_case("state-batch", LSTM, _be, "'h'", state={"h": (_t, (3, 16), _f, 0.0)})
    call_case("state-shape", LSTM, _be, "'h'", state={"h": (_t, (2, 15), _f, 0.0)})
    call_case("state-rank", LSTM, _be, "'h'", state={"h": (_t, (16,), _f, 0.0)})
    call_case("state-not-dict", LSTM, _be, "state", state=("py", 123))
    call_case("state-list", LSTM, _be, "state", state=("py", [1, 2]))
    call_case("state-none-value", LSTM, _be, "'h'", state={"h": ("py", None)}, expected="ok_or_error")
    call_case("tok-negative", SENT, _be, "'words'", name="Sentiment", set={"words": (_t, (2, 4), "int64", -1)})
    call_case("tok-vocab", SENT, _be, "'words'", name="Sentiment", set={"words": (_t, (2, 4), "int64", 1000)})
    call_case("tok-huge", SENT, _be, "'words'", name="Sentiment", set={"words": (_t, (2, 4), "int64", 1 << 40)})
    call_case("tok-float", SENT, _be, "'words'", name="Sentiment", set={"words": (_t, (2, 4), _f, 1.5)})
    call_case("tok-rank3", SENT, _be, "'words'", name="Sentiment", set={"words": (_t, (2, 4, 1), "int64", 1)})
    call_case("tok-steps0", SENT, _be, "'words'|steps|length", name="Sentiment", set={"words": (_t, (2, 0), "int64", 1)})
    call_case("batch-mismatch-inputs", TRANS, _be, "'word'|'src'|batch", name="Translate",
              set={"word": (_t, (3, 4), "int64", 1)})
    # a model's run states (`state=` of a model call) and the first y[t-1] (`word.last`)
    call_case("model-state-unknown", TRANS, _be, "'dec.x'", name="Translate", state={"dec.x": (_t, (2, 64), _f, 0.0)})
    call_case("model-state-shape", TRANS, _be, "'dec.h'", name="Translate", state={"dec.h": (_t, (2, 63), _f, 0.0)})
    call_case("model-state-token", TRANS, _be, "'word.last'", name="Translate",
              state={"word.last": (_t, (2,), "int64", 400)})
    call_case("model-state-token-float", TRANS, _be, "'word.last'", name="Translate",
              state={"word.last": (_t, (2,), _f, 1.0)})
    call_case("memory-batch", BAHD, _be, "'m'|batch", name="BahdanauDecoder", set={"m": (_t, (3, 6, 64), _f, 0.0)})
    call_case("memory-dim", BAHD, _be, "'m'", name="BahdanauDecoder", set={"m": (_t, (2, 6, 63), _f, 0.0)})
    call_case("memory-empty", BAHD, _be, "'m'|steps|length", name="BahdanauDecoder",
              set={"m": (_t, (2, 0, 64), _f, 0.0)})
    call_case("nan-ok", LSTM, _be, None, set={"x": ("base", "x", "nan")}, expected="ok")
    call_case("noncontig-ok", LSTM, _be, None, set={"x": ("base", "x", "noncontig")}, expected="ok")
    call_case("grad-unknown", LSTM, _be, "'nope'|nope", how="grad", d_out={"nope": ("base", "out.y")}) if _be == "numpy" \
        else None
    call_case("grad-shape", LSTM, _be, "'y'", how="grad", d_out={"y": ("arr", (2, 4, 15), "float64", 1.0)}) \
        if _be == "numpy" else None
    for _kw, _m in [({"batch": -1}, "batch"), ({"batch": 0}, "batch"), ({"steps": 0}, "steps"),
                    ({"steps": -3}, "steps"), ({"batch": 1.5}, "batch"), ({"batch": "2"}, "batch"),
                    ({"batch": 10 ** 12}, "batch|large|memory|limit"), ({"steps": True}, "steps")]:
        add(f"e-{_be}-example-{'-'.join(f'{k}{v}' for k, v in _kw.items())}", "e", "example",
            {"spec": LSTM, "backend": _be, "kw": _kw}, "input_error", match=_m, timeout=20)
call_case("numpy-to-torch", LSTM, "torch", "'x'|tensor", set={"x": ("base", "x", "numpy")})
call_case("list-to-torch", LSTM, "torch", "'x'|tensor", set={"x": ("base", "x", "list")})
call_case("float64-to-float32", LSTM, "torch", "'x'|dtype|float", set={"x": ("base", "x", "float64")})
call_case("float16", LSTM, "torch", "'x'|dtype|float", set={"x": ("base", "x", "float16")})
call_case("tokens-int32", SENT, "torch", None, name="Sentiment", set={"words": ("base", "words", "int32")},
          expected="ok")
call_case("complex", LSTM, "numpy", "'x'", set={"x": ("arr", (2, 4, 8), "complex", 1.0)})
call_case("str-array", LSTM, "numpy", "'x'", set={"x": ("arr", (2, 4, 8), "str", "a")})
call_case("object-array", LSTM, "numpy", "'x'", set={"x": ("arr", (2, 4, 8), "object", 1.0)})
call_case("list-ok", LSTM, "numpy", "'x'", set={"x": ("base", "x", "list")}, expected="ok")
call_case("tokens-float-integral", SENT, "numpy", "'words'", name="Sentiment",
          set={"words": ("arr", (2, 4), "float64", 1.0)})
call_case("tokens-int32", SENT, "numpy", None, name="Sentiment", set={"words": ("base", "words", "int32")},
          expected="ok")
call_case("state-batch-vs-memory", BAHD, "numpy", "batch|'h'|'m'", name="BahdanauDecoder",
          state={"h": ("arr", (3, 64), "float32", 0.0)})

# =================================================================================================
# (f) weight files
# =================================================================================================
def _npz(arrays: dict, compress=False) -> bytes:
    import numpy as np

    buf = io.BytesIO()
    (np.savez_compressed if compress else np.savez)(buf, **arrays)
    return buf.getvalue()


def _npy_header(shape, descr="<f8") -> bytes:
    header = repr({"descr": descr, "fortran_order": False, "shape": tuple(shape)}).encode() + b" "
    header += b" " * ((64 - (10 + len(header) + 1) % 64) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header


def _npz_raw(members: dict) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def _safetensors(tensors: dict, header_extra=None, header_len=None) -> bytes:
    import numpy as np

    header, data, off = {}, b"", 0
    for k, a in tensors.items():
        a = np.ascontiguousarray(a)
        b = a.tobytes()
        header[k] = {"dtype": {"float32": "F32", "float64": "F64", "int64": "I64", "float16": "F16"}[str(a.dtype)],
                     "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        data += b
        off += len(b)
    header.update(header_extra or {})
    h = json.dumps(header).encode()
    return struct.pack("<Q", header_len if header_len is not None else len(h)) + h + data


def _rnn_params(dtype="float32"):
    import numpy as np

    return {"W": np.zeros((4, 3), dtype), "U": np.zeros((4, 4), dtype), "b": np.zeros((4,), dtype)}


_GOOD_NPZ = _npz(_rnn_params())
_GOOD_ST = _safetensors(_rnn_params())
WSPEC = ("text", RNN)


def w_case(id, backend, op, target, expected="error", files=None, match=None, **kw):
    p = {"spec": WSPEC, "backend": backend, "op": op, "target": target}
    p.update(kw.pop("extra", {}))
    add(f"f-{backend}-{id}", "f", "weights", p, expected, files=files or {}, match=match, timeout=kw.pop("timeout", 20),
        **kw)


for _be, _good, _ext in (("numpy", _GOOD_NPZ, "npz"), ("torch", _GOOD_ST, "safetensors")):
    _w = f"w.{_ext}"
    w_case("roundtrip", _be, "roundtrip", _w, "ok", writes=(_w,))
    w_case("load-good", _be, "load", _w, "ok", files={_w: _good})
    w_case("load-truncated", _be, "load", _w, files={_w: _good[: len(_good) // 2]}, match=_w)
    w_case("load-truncated-tail", _be, "load", _w, files={_w: _good[:-9]}, match=_w)
    w_case("load-empty", _be, "load", _w, files={_w: b""}, match=_w)
    w_case("load-text", _be, "load", _w, files={_w: "W = [1, 2, 3]\n" * 100}, match=_w)
    # both backends read both formats, whichever the file's name says (its first bytes decide)
    w_case("load-other-format", _be, "load", _w, "ok", files={_w: _GOOD_ST if _be == "numpy" else _GOOD_NPZ})
    w_case("load-missing", _be, "load", "nope." + _ext, match="nope")
    w_case("load-dir", _be, "load", "d." + _ext, files={"d." + _ext: ("dir",)}, match="d")
    w_case("load-fifo", _be, "load", "p." + _ext, files={"p." + _ext: ("fifo",)}, match="p", timeout=8)
    w_case("load-devzero", _be, "load", "z." + _ext, files={"z." + _ext: ("symlink", "/dev/zero")}, match="z", timeout=8)
    w_case("load-sparse-4gib", _be, "load", _w, files={_w: ("sparse", 4 << 30)}, match=_w, max_s=5)
    w_case("load-names-wrong", _be, "load", _w, files={_w: _npz({"W": _rnn_params()["W"]}) if _be == "numpy"
                                                       else _safetensors({"W": _rnn_params()["W"]})}, match="U|b|missing")
    w_case("load-shape-wrong", _be, "load", _w, files={_w: _npz({**_rnn_params(), "W": __import__("numpy").zeros((3, 4))})
                                                       if _be == "numpy" else _safetensors(
                                                           {**_rnn_params(), "W": __import__("numpy").zeros((3, 4), "float32")})},
           match="W")
    w_case("load-int-dtype", _be, "load", _w, "ok_or_error", files={_w: _npz(_rnn_params("int64")) if _be == "numpy"
                                                     else _safetensors(_rnn_params("int64"))}, match="W|U|b|dtype")
    w_case("load-nan-values", _be, "load", _w, "ok", files={_w: _npz({k: v * float("nan") for k, v in _rnn_params().items()})
                                                            if _be == "numpy" else _safetensors(
                                                                {k: v * float("nan") for k, v in _rnn_params().items()})})
    w_case("save-missing-dir", _be, "save", f"missing/{_w}", match="missing")
    w_case("save-folder", _be, "save", "d", files={"d": ("dir",)}, match="d")
    w_case("save-devnull", _be, "save", "null", files={"null": _DEVNULL}, match="null")
    w_case("save-devfull", _be, "save", "full", files={"full": _DEVFULL}, match="full")
    w_case("save-fifo", _be, "save", "p." + _ext, files={"p." + _ext: ("fifo",)}, match="p", timeout=8)
    w_case("save-failed-keeps-previous", _be, "save", _w, files={_w: _good}, keep=(_w,), match=_w,
           extra={"fsize": 200})
    w_case("save-no-suffix", _be, "save", "weights", "ok", writes=("weights",))
    w_case("save-nul-name", _be, "save", "a\0b." + _ext, match="a")
    w_case("save-over-spec", _be, "save", "spec.seq", "ok", files={"spec.seq": RNN}, writes=("spec.seq",))
w_case("load-complex", "numpy", "load", "w.npz", files={"w.npz": _npz({**_rnn_params(),
                                                                      "W": __import__("numpy").ones((4, 3), complex)})},
       match="W")
w_case("load-strings", "numpy", "load", "w.npz", files={"w.npz": _npz({**_rnn_params(),
                                                                      "W": __import__("numpy").full((4, 3), "ab")})},
       match="W")
w_case("load-object", "numpy", "load", "w.npz",
       files={"w.npz": _npz({**_rnn_params(), "W": __import__("numpy").array([[None] * 3] * 4, dtype=object)})}, match="W")
w_case("load-huge-declared-extra", "numpy", "load", "w.npz",
       files={"w.npz": _npz_raw({"W.npy": _npy_header((4, 3), "<f4") + b"\0" * 48,
                                 "U.npy": _npy_header((4, 4), "<f4") + b"\0" * 64,
                                 "b.npy": _npy_header((4,), "<f4") + b"\0" * 16,
                                 "huge.npy": _npy_header((60000, 60000)) + b"\0" * 64})}, match="huge", max_s=5)
w_case("load-huge-declared-right-name", "numpy", "load", "w.npz",
       files={"w.npz": _npz_raw({"W.npy": _npy_header((60000, 60000)) + b"\0" * 64,
                                 "U.npy": _npy_header((4, 4), "<f4") + b"\0" * 64,
                                 "b.npy": _npy_header((4,), "<f4") + b"\0" * 16})}, match="W", max_s=5)
w_case("load-zip-not-npy", "numpy", "load", "w.npz",
       files={"w.npz": _npz_raw({"W.npy": b"not an array", "U.npy": b"", "b.npy": b"\x93NUMPY"})}, match="W|U|b|w.npz")
w_case("load-compressed-ok", "numpy", "load", "w.npz", "ok", files={"w.npz": _npz(_rnn_params(), compress=True)})
w_case("load-npy-not-npz", "numpy", "load", "w.npz", files={"w.npz": _npy_header((4, 3)) + b"\0" * 96}, match="w.npz")
w_case("load-huge-header", "torch", "load", "w.safetensors",
       files={"w.safetensors": _safetensors(_rnn_params(), header_len=1 << 40)}, match="w.safetensors", max_s=5)
w_case("load-huge-declared-extra", "torch", "load", "w.safetensors",
       files={"w.safetensors": _safetensors(_rnn_params(), header_extra={
           "huge": {"dtype": "F64", "shape": [60000, 60000], "data_offsets": [0, 28800000000]}})},
       match="huge|w.safetensors", max_s=5)
w_case("load-float16", "torch", "load", "w.safetensors", "ok_or_error",
       files={"w.safetensors": _safetensors(_rnn_params("float16"))}, match="W|U|b|dtype")
w_case("load-float64", "torch", "load", "w.safetensors", "ok", files={"w.safetensors": _safetensors(_rnn_params("float64"))})

# =================================================================================================
# (g) rendering
# =================================================================================================
def r_case(id, text, expected="ok", **p):
    kw = {k: p.pop(k) for k in ("match", "max_s", "timeout", "slow", "writes", "files") if k in p}
    files = {"spec.seq": text, **kw.pop("files", {})}
    add(f"g-{id}", "g", "render", p, expected, files=files, **kw)


_BIG_MODEL = model("    repeat 2000 { z = RNN(4, 4) over z }")
r_case("2000-layers-unrolled-dot", _BIG_MODEL, "ok_or_spec_error", view="unrolled", steps=6, output="x.dot",
       writes=("x.dot",), max_s=10, timeout=60)
r_case("2000-layers-unrolled-svg", _BIG_MODEL, "ok_or_spec_error", view="unrolled", steps=6, output="x.svg",
       writes=("x.svg",), max_s=30, timeout=90, slow=True)
r_case("2000-layers-rolled-svg", _BIG_MODEL, "ok_or_spec_error", view="rolled", output="x.svg", writes=("x.svg",),
       max_s=30, timeout=90, slow=True)
r_case("gates-1000-steps", open(__file__.replace("tests/hostile/cases.py", "specs/lstm.seq")).read(), "ok",
       view="unrolled", detail="gates", steps=1000, output="x.dot", writes=("x.dot",), max_s=10, timeout=60)
r_case("gates-1000-steps-svg", open(__file__.replace("tests/hostile/cases.py", "specs/lstm.seq")).read(), "ok",
       view="unrolled", detail="gates", steps=1000, output="x.svg", writes=("x.svg",), max_s=20, timeout=60, slow=True)
r_case("wide-cell-rolled-svg", "cell C(D = 2) {\n    in x: [D]\n    v0 = x\n" + "".join(
    f"    v{i} = tanh(v{i - 1})\n" for i in range(1, 3000)) + "    out y = v2999\n}\n", "ok_or_spec_error",
    view="rolled", output="x.svg", writes=("x.svg",), max_s=30, timeout=90, slow=True)
r_case("steps-huge", RNN, "error", view="unrolled", steps=10 ** 9, output="x.dot", match="steps", max_s=5)
r_case("steps-zero", RNN, "error", view="unrolled", steps=0, output="x.dot", match="steps")
r_case("steps-negative", RNN, "error", view="unrolled", steps=-5, output="x.dot", match="steps")
r_case("view-bad", RNN, "error", view="sideways", match="view|sideways")
r_case("detail-bad", RNN, "error", view="unrolled", detail="atoms", match="detail|atoms")
r_case("name-missing", RNN, "error", name="Nope", match="Nope")
r_case("out-jpg", RNN, "error", output="x.jpg", match="jpg")
r_case("out-folder", RNN, "error", output="d.svg", files={"d.svg": ("dir",)}, match="d.svg")
r_case("out-devfull", RNN, "error", output="full.dot", files={"full.dot": _DEVFULL}, match="full")
r_case("out-fifo", RNN, "error", output="p.dot", files={"p.dot": ("fifo",)}, match="p.dot", timeout=8)
add("g-dot-failure-shows-reason", "g", "api", {"scenario": "dot_fails"}, "error", match="syntax|error|line")
for _spec in ("rnn", "lstm", "gru", "peephole_lstm", "delay2", "attention", "tasks", "stacked", "transformer"):
    for _view in ("rolled", "unrolled"):
        add(f"g-escaped-{_spec}-{_view}", "g", "render", {"src": ("spec", _spec), "view": _view, "check_dot": True},
            "ok", timeout=30, slow=_spec in ("attention", "tasks", "stacked", "transformer") and _view == "unrolled")
add("g-escaped-gates", "g", "render", {"src": ("spec", "lstm"), "view": "unrolled", "detail": "gates", "steps": 12,
                                       "check_dot": True}, "ok", timeout=30)
add("g-escaped-shadow-names", "g", "render", {"view": "unrolled", "detail": "gates", "check_dot": True, "shapes": True},
    "ok", files={"spec.seq": _shadow_cell("digraph", "eq").replace("cell C", "cell node")}, timeout=30)
add("g-escaped-model-names", "g", "render", {"view": "unrolled", "check_dot": True, "shapes": True}, "ok",
    files={"spec.seq": _shadow_cell("subgraph", "inst").replace("model M", "model edge")}, timeout=30)

_ids = [c.id for c in CASES]
assert len(_ids) == len(set(_ids)), sorted({i for i in _ids if _ids.count(i) > 1})

# =================================================================================================
# the fast subset (CI, about 30 s on 2 cores): one or two cases of each attack; everything else
# is marked slow and runs with `make hostile` (pytest -m "slow or not slow")
# =================================================================================================
FAST = """
a-nest-65 a-nest-brackets-only a-nest-unclosed a-expr-300-terms a-neg-50 a-index-chain a-delay-of-delay
a-size-2^31+1 a-size-zero a-size-default-chain a-size-poly-blowup a-size-div-zero a-param-46340sq
a-param-46340sq-compile a-params-3x2^30 a-embed-2^30 a-sizes-arg-46340 a-sizes-arg-bool a-sizes-arg-unknown
a-sizes-arg-not-dict a-repeat-nested-10000 a-repeat-linear-10000 a-repeat-2^31 a-repeat-0 a-repeat-unbound
a-sum13-then-a1 a-160-last-first a-loop-300 a-loop-self a-init-uniform-1/0 a-init-normal-sqrt-neg
a-init-normal-1e308x10 a-init-const-1e308x10 a-init-normal-neg a-init-uniform-1e308 a-init-symbolic-inf
a-state-init-1e999 a-delay-leading-zeros a-delay-1001 a-kwarg-tanh a-positions-no-seq-input a-stateless-cell
a-no-output a-nul-byte a-invalid-utf8 a-utf8-bom a-crlf a-bidi a-1mib-plus-1 a-use-65-files a-use-self
a-use-cycle-3 a-use-parent a-use-etc-passwd a-use-missing a-use-dir a-use-error-inside a-use-2mib
a-use-symlink-escape a-use-chain-200 a-run-self a-run-huge-size
b-fifo-load b-fifo-use b-devzero-symlink b-devzero-use b-devnull-symlink b-private-chardev b-dev-stdin
b-sparse-2gib b-symlink-loop b-dangling-symlink b-empty-load b-empty-main b-empty-render b-nonutf8-name-load
b-nonutf8-name-error b-directory-seq b-missing b-path-braces b-path-nul b-path-too-long b-oneline-text-str
b-text-kw b-path-and-text-kw b-multiline-text b-bytes-source b-int-source b-list-source b-compile-name-123
b-compile-sizes-str b-compile-sizes-huge b-compile-backend b-compile-option b-compile-positions-no-seq
b-program-sizes b-sizes-numpy-int
c-check-missing c-check-dir c-check-fifo c-compile-devzero c-render-fifo c-ir-nonutf8 c-check-spec-error
c-compile-empty c-render-empty c-set-0-H c-set-3-H_abc c-set-5-H_0 c-set-7-H_99999999999999999999999
c-set-9-1H_3 c-set-10-Q_3 c-set-46340 c-flag-frobnicate c-flag-chekc_spec.seq c-flag-compile_spec.seq_backend_jax
c-flag-render_spec.seq_steps_100000 c-flag-render_spec.seq_o_x.jpg c-flag-compile_spec.seq_def_Nope
c-compile-o-missing-dir c-compile-o-folder c-compile-o-devfull c-compile-o-devnull c-compile-o-fifo
c-compile-o-self c-compile-o-imported c-compile-o-failed-write c-compile-o-nul c-render-o-devfull
c-render-o-failed-write c-render-no-dot c-check-many-one-bad c-nonutf8-name-error c-proc-missing
c-proc-broken-pipe
d-eq-reverse d-eq-init d-eq-seqs d-eq-DTYPE d-eq-np d-eq-g_h d-def-reverse d-inst-pre d-param-forward
d-two-defs-A-H1
e-numpy-rank-low e-numpy-dim-wrong e-numpy-dtype-int e-numpy-none e-numpy-missing e-numpy-extra e-numpy-steps0
e-numpy-state-unknown e-numpy-state-batch e-numpy-tok-negative e-numpy-tok-vocab e-numpy-batch-mismatch-inputs
e-numpy-memory-batch e-numpy-example-batch-1 e-numpy-example-batch1000000000000 e-numpy-complex
e-numpy-grad-shape e-torch-rank-low e-torch-dtype-int e-torch-tok-vocab e-torch-state-unknown
e-torch-numpy-to-torch e-torch-float64-to-float32 e-torch-example-batch-1
f-numpy-roundtrip f-numpy-load-truncated f-numpy-load-empty f-numpy-load-text f-numpy-load-fifo
f-numpy-load-devzero f-numpy-load-sparse-4gib f-numpy-load-names-wrong f-numpy-load-object
f-numpy-load-huge-declared-extra f-numpy-save-missing-dir f-numpy-save-folder f-numpy-save-devnull
f-numpy-save-fifo f-numpy-save-failed-keeps-previous f-numpy-save-no-suffix f-numpy-save-nul-name
f-torch-roundtrip f-torch-load-truncated f-torch-load-fifo f-torch-load-huge-header
f-torch-load-huge-declared-extra f-torch-save-devnull f-torch-save-failed-keeps-previous
g-2000-layers-unrolled-dot g-gates-1000-steps g-steps-huge g-view-bad g-name-missing g-out-jpg g-out-fifo
g-dot-failure-shows-reason g-escaped-lstm-rolled g-escaped-lstm-unrolled g-escaped-tasks-rolled
g-escaped-gates g-escaped-shadow-names
""".split()
_unknown = set(FAST) - {c.id for c in CASES}
assert not _unknown, sorted(_unknown)
CASES = [dataclasses.replace(c, slow=c.id not in FAST) for c in CASES]

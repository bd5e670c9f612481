"""Messages a new user needed (issue 11): each says what actually works, as `file:line:col:`, the
source line, a caret and a hint. The whole text of each is asserted."""

from __future__ import annotations

import pytest

import seqdsl
from seqdsl.errors import SpecError

CELL = """cell C(I = 3, H = 4) {{
    in x: [I]
    state h: [H]
    param W: [H, I]
    param U: [H, H]
{body}
    out y = h
}}
"""

TWO_CELLS = """cell LSTM(I = 2, H = 3) {
    in x: [I]
    state h: [H]
    state c: [H]
    param W: [H, I]
    c = c[t-1] + W @ x
    h = tanh(c) * h[t-1]
    out y = h
}
cell GRU(I = 2, H = 3) {
    in x: [I]
    state h: [H]
    param W: [H, I]
    h = tanh(W @ x + h[t-1])
    out y = h
}
model M() {
    in w: seq<int>
    e = embed(w, 5, 2)
"""


def _error(text: str) -> str:
    with pytest.raises(SpecError) as info:
        seqdsl.load(text)
    return str(info.value)


def test_an_input_read_at_t_minus_1_says_how_to_keep_earlier_inputs():
    assert _error(CELL.format(body="    h = tanh(W @ x[t-1] + U @ h[t-1])")) == (
        "<string>:6:18: error: 'x' is an input; only states can be read at t-1\n"
        "        h = tanh(W @ x[t-1] + U @ h[t-1])\n"
        "                     ^\n"
        "    hint: keep earlier inputs in a state of their own: declare 'state x_prev: [I]', add the equation "
        "'x_prev = x', and read x_prev[t-1] (zeros before the first step)")


def test_the_suggestion_for_an_input_works():
    body = "    state x_prev: [I]\n    x_prev = x\n    h = tanh(W @ x_prev[t-1] + U @ h[t-1])"
    assert seqdsl.load(CELL.format(body=body)).warnings == []


def test_declaring_an_input_a_state_says_what_works_instead():
    text = CELL.format(body="    state x: [I]\n    h = tanh(W @ x[t-1] + U @ h[t-1])")
    assert _error(text) == (
        "<string>:6:11: error: 'x' is declared twice: it is an input, and an input cannot also be a state\n"
        "        state x: [I]\n"
        "              ^\n"
        "    hint: to read earlier inputs, keep them in a state of their own: 'state x_prev: [I]', the equation "
        "'x_prev = x', then x_prev[t-1]")


def test_the_suggested_name_is_free():
    body = "    x_prev = W @ x\n    h = tanh(x_prev + U @ h[t-1] + W @ x[t-2])"
    assert "declare 'state x_prev2: [I]'" in _error(CELL.format(body=body))


@pytest.mark.parametrize("body,message,hint", [
    ("    h = tanh(W[t-1] @ x + U @ h[t-1])", "'W' is a parameter, the same at every step; only states can be "
     "read at t-1", "write W"),
    ("    a = W @ x\n    h = tanh(a[t-1] + U @ h[t-1])", "'a' is not a state; only states can be read at t-1",
     "make it one: declare 'state a: [..]' (its shape); its equation stays as it is"),
    ("    h = tanh(W @ x + H[t-1])", "'H' is a size, the same at every step; only states can be read at t-1",
     "write H"),
])
def test_other_values_read_at_t_minus_1(body, message, hint):
    text = _error(CELL.format(body=body))
    assert message in text.splitlines()[0] and text.endswith(f"hint: {hint}")


def test_a_later_step_says_only_past_steps_can_be_read():
    assert _error(CELL.format(body="    h = tanh(W @ x + U @ h[t+1])")) == (
        "<string>:6:26: error: h[t+1] reads a later step; only past steps can be read (h[t-1], ...)\n"
        "        h = tanh(W @ x + U @ h[t+1])\n"
        "                             ^~~~~~\n"
        "    hint: a cell computes step t from earlier steps; to see the inputs that come later, run the cell "
        "'reversed' or 'bidirectional' in the model")


def test_t_plus_0_is_t():
    text = CELL.format(body="    a = W @ x\n    h = tanh(a[t+0] + U @ h[t-1])")
    assert seqdsl.load(text).warnings == []


def test_a_matrix_times_a_vector_suggests_at():
    assert _error(CELL.format(body="    h = tanh(W * x + U @ h[t-1])")) == (
        "<string>:6:14: error: shape mismatch in multiplication: shared[4, 3] * [3] (a matrix and a vector)\n"
        "        h = tanh(W * x + U @ h[t-1])\n"
        "                 ^~~~~\n"
        "    hint: '*' multiplies elementwise; a matrix times a vector is '@': write W @ x")


@pytest.mark.parametrize("expr,fix", [
    ("U * h[t-1]", "write U @ h[t-1]"),
    ("U * (h[t-1] + 1)", "write U @ (h[t-1] + 1)"),
    ("tanh(h[t-1]) * U", "write U @ tanh(h[t-1])"),
    ("W * h[t-1]", "write h[t-1] @ W"),
])
def test_the_matmul_hint_writes_the_operands(expr, fix):
    assert _error(CELL.format(body=f"    h = tanh(W @ x + {expr})")).endswith(fix)


def test_a_run_started_from_final_states_it_does_not_have_warns():
    text = TWO_CELLS + "    enc = LSTM(2, 3) over e\n    dec = GRU(2, 3) over e from enc.final\n    out y = dec.y\n}\n"
    program = seqdsl.load(text)
    assert [str(w) for w in program.warnings] == [
        "<string>:21:33: warning: GRU starts from LSTM's final h; LSTM's final c is not used\n"
        "        dec = GRU(2, 3) over e from enc.final\n"
        "                                    ^~~~~~~~~\n"
        "    hint: GRU has no state c; to start from h alone without this warning, name it: "
        "from (h = enc.h[last])"]


def test_naming_the_states_silences_the_warning():
    text = TWO_CELLS + ("    enc = LSTM(2, 3) over e\n    dec = GRU(2, 3) over e from (h = enc.h[last])\n"
                        "    out y = dec.y\n}\n")
    assert seqdsl.load(text).warnings == []


def test_a_run_started_from_final_states_that_lack_one_says_which_they_share():
    text = TWO_CELLS + "    enc = GRU(2, 3) over e\n    dec = LSTM(2, 3) over e from enc.final\n    out y = dec.y\n}\n"
    assert _error(text) == (
        "<string>:21:34: error: GRU has no state 'c' to start LSTM from\n"
        "        dec = LSTM(2, 3) over e from enc.final\n"
        "                                     ^~~~~~~~~\n"
        "    hint: GRU ends with h; start the states they share by name, from (h = enc.h[last]), and the others "
        "start at their initial values")


def test_the_warning_is_printed_by_check(tmp_path, capsys):
    from conftest import run_cli

    path = tmp_path / "m.seq"
    path.write_text(TWO_CELLS + "    enc = LSTM(2, 3) over e reversed\n    dec = GRU(2, 3) over e from enc.final\n"
                                "    out y = dec.y\n}\n")
    r = run_cli(capsys, "check", path)
    assert r.returncode == 0, r.stderr
    assert f"{path}:21:33: warning: GRU starts from LSTM's final h; LSTM's final c is not used" in r.stderr
    assert "name it: from (h = ...)" in r.stderr  # a reversed run ends at its first step, not at h[last]


@pytest.mark.parametrize("expr", ["x / 0", "x * (1 / (H - I))", "x + 1 / 0"])
def test_division_by_a_constant_zero_is_an_error(expr):
    with pytest.raises(SpecError, match="division by zero: the divisor is the number 0"):
        seqdsl.compile(f"cell C(I = 4, H = 4) {{\n    in x: [I]\n    out y = {expr}\n}}\n")

"""Mistakes with predicted outputs (`out y ~ categorical(...)`, `y[t-1]`): each is a SpecError at
the right place, with a message that says what is wrong and a hint that says what works. The first
line of each is asserted whole; the hint where there is one."""

from __future__ import annotations

import numpy as np
import pytest

import seqdsl
from seqdsl.errors import SpecError

CELL = """cell R(I = 2, H = 3) {
    in x: [I]
    state h: [H]
    param W: [H, I]
    h = tanh(W @ x + h[t-1])
    out y = h
}
"""


def model(body: str) -> str:
    return CELL + "model M(V = 5, H = 3) {\n" + body + "\n}\n"


def error(text: str) -> SpecError:
    with pytest.raises(SpecError) as info:
        seqdsl.load(text)
    return info.value


CASES = {
    "read-now": ("    r = R(V, H) over onehot(word, V)\n    out word ~ categorical(linear(r.y, V))",
                 "<string>:9:29: error: 'word' is what the model predicts: its value at a step is only known once "
                 "that step has predicted it", "read the previous prediction, word[t-1] (the start token at the "
                 "first step)"),
    "read-at-t": ("    r = R(V, H) over onehot(word[t], V)\n    out word ~ categorical(linear(r.y, V))",
                  "<string>:9:29: error: 'word' is what the model predicts", "word[t-1]"),
    "two-back": ("    r = R(V, H) over onehot(word[t-2], V)\n    out word ~ categorical(linear(r.y, V))",
                 "<string>:9:29: error: only the previous prediction can be read: word[t-1], not word[t-2]",
                 "keep earlier predictions in a cell's states"),
    "per-sample": ("    in w: seq<int>\n    r = R(2 * V, H) over concat(onehot(w, V), onehot(label[t-1], V))\n"
                   "    out label ~ categorical(linear(r.h[last], V))",
                   "<string>:10:54: error: 'label' is predicted once per sample, so it has no previous step to read",
                   "label[t-1] needs a prediction per step: a seq[N] of logits"),
    "per-sample-read-after": ("    in w: seq<int>\n    r = R(V, H) over onehot(w, V)\n"
                              "    out label ~ categorical(linear(r.h[last], V))\n    out z = label[t-1]",
                              "<string>:12:13: error: 'label' is predicted once per sample, so it has no previous "
                              "step to read", "label[t-1] needs a prediction per step: a seq[N] of logits"),
    "vocabulary-read-after": ("    in w: seq<int>\n    r = R(V, H) over onehot(w, V)\n"
                              "    out word ~ categorical(linear(r.y, V))\n"
                              "    s = R(4, H) over embed(word[t-1], 7, 4)\n    out q = s.y",
                              "<string>:12:22: error: 'word' has 5 classes (its logits) but word[t-1] is read with a "
                              "vocabulary of 7", "the vocabulary that reads the previous prediction must be the one"),
    "vocabulary": ("    r = R(4, H) over embed(word[t-1], 7, 4)\n    out word ~ categorical(linear(r.y, V))",
                   "<string>:9:22: error: 'word' has 5 classes (its logits) but word[t-1] is read with a vocabulary "
                   "of 7", "the vocabulary that reads the previous prediction must be the one it is predicted from"),
    "not-a-distribution": ("    in w: seq<int>\n    out word ~ softmax(onehot(w, V))",
                           "<string>:10:16: error: 'out word ~' takes a distribution, got 'softmax'",
                           "categorical(logits)"),
    "arity": ("    in w: seq<int>\n    out word ~ categorical(onehot(w, V), 2)",
              "<string>:10:16: error: categorical() takes 1 argument, got 2", "categorical(logits)"),
    "token-logits": ("    in w: seq<int>\n    out word ~ categorical(w)",
                     "<string>:10:28: error: categorical's logits must be a vector per sample or per step "
                     "([N] or seq[N]), got seq<int>", "linear(x, N)"),
    "std": ("    in x: seq[2]\n    out y ~ normal(x, 0)", "<string>:10:23: error: normal's std must be positive, got 0",
            None),
    "std-value": ("    in x: seq[2]\n    out y ~ normal(x, x)", "<string>:10:23: error: normal's std",
                  "a positive number"),
    "normal-size": ("    r = R(2, H) over y[t-1]\n    out y ~ normal(linear(r.y, 2), 1)",
                    "<string>:9:22: error: reading y[t-1] needs y's size: a normal prediction is a vector",
                    "declare it: out y: [D] ~ normal(...)"),
    "normal-type": ("    r = R(3, H) over y[t-1]\n    out y: [3] ~ normal(linear(r.y, 2), 1)",
                    "<string>:10:25: error: 'y' is declared [3] but its mean is seq[2]", None),
    "input-too": ("    in word: seq<int>\n    r = R(V, H) over onehot(word, V)\n"
                  "    out word ~ categorical(linear(r.y, V))",
                  "<string>:9:8: error: 'word' is predicted by 'out word ~ ...' and cannot also be an input",
                  "the observed word is passed by name like an input"),
    "twice": ("    in w: seq<int>\n    out word ~ categorical(onehot(w, V))\n    out word ~ categorical(onehot(w, V))",
              "<string>:11:9: error: output 'word' is declared twice", None),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_message(case):
    body, first, hint = CASES[case]
    e = error(model(body))
    text = str(e)
    assert text.startswith(first), text
    if hint:
        assert hint in (e.hint or ""), e.hint


def test_only_models_predict():
    e = error("cell C(H = 2) {\n    in x: [H]\n    out y ~ categorical(x)\n}\n")
    assert str(e).startswith("<string>:3:9: error: only a model predicts outputs; a cell writes 'out y = ...'")


def test_generation_needs_steps_it_can_take():
    """A prediction read at t-1 through a reversed run cannot be generated step by step: the error
    names the place, and teacher-forced learning still works."""
    text = model("    r = R(V, H) over onehot(word[t-1], V) reversed\n    out word ~ categorical(linear(r.y, V))")
    exe = seqdsl.compile(text, name="M")
    out, _ = exe(word=np.array([[1, 2, 3]]))
    assert out["word"].shape == (1, 3, 5)
    with pytest.raises(SpecError) as info:
        exe.generate(batch=1, max_len=3)
    assert str(info.value).startswith("<string>:9:9: error: cannot generate step by step: this depends on the "
                                      "previous prediction (word[t-1]) but the run 'r' is reversed")
    assert "teacher-forced learning" in info.value.hint


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_generation_needs_states_one_step_back(backend):
    """A cell that reads a state two steps back cannot step (a step carries each state's last value
    only): begin() and generate() say so at the run; learning through it still works."""
    pytest.importorskip("torch")
    cell = CELL.replace("cell R(", "cell R2(").replace("h = tanh(W @ x + h[t-1])", "h = tanh(W @ x + h[t-1] - h[t-2])")
    text = cell + "model M(V = 5, H = 3) {\n    r = R2(V, H) over onehot(word[t-1], V)\n" \
        "    out word ~ categorical(linear(r.y, V))\n}\n"
    exe = seqdsl.compile(text, name="M", backend=backend)
    out, _ = exe(word=np.array([[1, 2, 3]]) if backend == "numpy" else __import__("torch").tensor([[1, 2, 3]]))
    assert tuple(out["word"].shape) == (1, 3, 5)
    for call in (lambda: exe.begin(batch=1), lambda: exe.generate(batch=1, max_len=3)):
        with pytest.raises(SpecError) as info:
            call()
        assert str(info.value).startswith("<string>:9:9: error: cannot generate step by step: the run 'r' reads "
                                          "h[t-2], but a step carries only the last value of each state")
        assert "learns (a call with the whole sequence)" in info.value.hint


def test_check_shows_predictions(tmp_path):
    from seqdsl.check import summary

    p = seqdsl.load(tmp_path.joinpath("m.seq").write_text(model(
        "    r = R(V, H) over onehot(word[t-1], V)\n    out word ~ categorical(linear(r.y, V))")) and
        tmp_path / "m.seq")
    s = summary(p.definitions["M"].graph)
    assert s["inputs"] == [("word", "seq<int> (observed: read at t-1)")]
    assert s["outputs"] == [("word", "~ categorical over 5 classes, per step")]

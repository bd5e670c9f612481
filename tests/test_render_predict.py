"""Drawing a model that predicts its output and reads the previous prediction
(`out word ~ categorical(...)`, `word[t-1]`): the shift is `word[t-1]` (the start token <s> at
step 1), the prediction is `word ~ categorical`, the observed `word` is the true words that
learning feeds (teacher forcing), and the unrolled view feeds each step's prediction into the next
step's input, dashed (generation). Models that predict nothing are drawn as before."""

from __future__ import annotations

import re

import pytest
from conftest import ROOT, all_definitions, spec_program
from test_render import edges, labelled, nodes, pos

import seqdsl
from seqdsl.ops import Op
from seqdsl.render import COLORS, to_dot

OBSERVED, GENERATION, OUTPUT = COLORS["observed"], COLORS["generation"], COLORS["output"]
# (spec, model, predicted output, the run that reads its previous value)
PREDICTING = [("tasks.seq", "CharLM", "char", "r: LSTM"), ("tasks.seq", "Translate", "word", "dec: LSTM"),
              ("attention.seq", "AttnTranslate", "word", "dec: BahdanauDecoder"),
              ("tasks.seq", "Caption", "word", "dec: LSTM"),
              ("attention.seq", "LuongTranslate", "word", "dec: LuongDecoder")]
IDS = [m for _, m, _, _ in PREDICTING]


def load(name):
    return seqdsl.load(ROOT / "specs" / name)


def column(ns, i) -> float:
    return pos(ns[i])[0]


def by_label(ns, label) -> str:
    found = [i for i, a in ns.items() if a["label"] == label]
    assert len(found) == 1, (label, found)
    return found[0]


@pytest.mark.parametrize("spec,model,y,run", PREDICTING, ids=IDS)
@pytest.mark.parametrize("n", [1, 4])
def test_unrolled_prediction_is_fed_to_the_next_step(spec, model, y, run, n):
    """Under step t the true word_{t-1} (<s> at step 1) enters the run (teacher forcing); above it
    `word_t ~ categorical`; a dashed edge takes word_t into step t+1's input (generation)."""
    text = to_dot(load(spec), model, "unrolled", n)
    ns, es = nodes(text), edges(text)
    boxes = {int(re.search(r"t=(\d+)$", a["label"])[1]): i
             for i, a in labelled(ns, rf"{re.escape(run)}\\nt=\d+").items()}
    assert sorted(boxes) == list(range(1, n + 1))
    truth = {i: a for i, a in ns.items() if a.get("fillcolor") == OBSERVED[0] and not a["label"].startswith("learn")}
    assert sorted(a["label"] for a in truth.values()) == sorted(["<s>"] + [f"{y}_{t}" for t in range(1, n)])
    preds = labelled(ns, rf"{y}_\d+\\n~ categorical")
    assert len(preds) == n and all(a["fillcolor"] == OUTPUT[0] for a in preds.values())
    for t in range(1, n + 1):
        inp = by_label(ns, "<s>" if t == 1 else f"{y}_{t - 1}")
        pred = by_label(ns, f"{y}_{t}\\n~ categorical")
        box = boxes[t]
        assert column(ns, inp) == column(ns, box) == column(ns, pred)
        learning = [e for a, b, e in es if a == inp and b == box]  # teacher forcing: the true previous word
        assert len(learning) == 1 and learning[0]["color"] == OBSERVED[1] and learning[0].get("style") != "dashed"
        assert any(a == box and b == pred for a, b, _ in es)
        fed = [(b, e) for a, b, e in es if a == pred and e.get("color") == GENERATION[1]]
        if t == n:
            assert not fed  # the last prediction feeds nothing
            continue
        assert len(fed) == 1 and fed[0][0] == by_label(ns, f"{y}_{t}")  # into step t+1's input, word_t
        assert fed[0][1]["style"] == "dashed" and column(ns, fed[0][0]) > column(ns, pred)
        assert pos(ns[fed[0][0]])[1] < pos(ns[pred])[1]
    generation = [(a, b) for a, b, e in es if e.get("color") == GENERATION[1]]
    assert len(generation) == n - 1 and not [b for _, b in generation if ns[b]["label"] == "<s>"]
    labels = {a["label"] for a in ns.values()}
    assert "learning (teacher forcing):\\nthe true previous output" in labels
    assert ("generation:\\nthe previous prediction" in labels) == (n > 1)  # one step: nothing fed back
    assert not [e for _, _, e in es if "t-1" in e.get("label", "")]  # the shift is the columns' offset
    assert not [label for label in labels if "_prev" in label or label == "shift"]


@pytest.mark.parametrize("spec,model,y,run", PREDICTING, ids=IDS)
def test_rolled_prediction_loops_back_as_the_previous_word(spec, model, y, run):
    """Rolled: the observed `word` (the true words) feeds `word[t-1]` in learning, and the
    prediction `word ~ categorical` feeds it back, dashed, in generation."""
    text = to_dot(load(spec), model, "rolled")
    ns, es = nodes(text), edges(text)
    observed = by_label(ns, f"{y}: seq<int>\\n(observed)")
    prev = by_label(ns, f"{y}[t-1]\\n(<s> at t=1)")
    pred = by_label(ns, f"{y} ~ categorical")
    assert ns[observed]["fillcolor"] == OBSERVED[0] and ns[pred]["fillcolor"] == OUTPUT[0]
    into = {a: e for a, b, e in es if b == prev}
    assert set(into) == {observed, pred}
    assert into[observed]["label"] == "learning" and into[observed]["color"] == OBSERVED[1]
    assert into[pred]["label"] == "generation" and into[pred]["style"] == "dashed"
    assert into[pred]["color"] == GENERATION[1] and into[pred]["constraint"] == "false"
    out_of_prev = [b for a, b, _ in es if a == prev]
    assert out_of_prev and pred not in out_of_prev
    labels = {a["label"] for a in ns.values()}
    assert "t-1" not in labels and "shift" not in labels and not [s for s in labels if "_prev" in s]
    assert {"learning (teacher forcing):\\nthe true previous output", "generation:\\nthe previous prediction"} <= labels


def test_elided_steps_pass_the_prediction_through_the_dots():
    """Above 8 steps, step 3's prediction goes into the '…' column's input, and the '…' column's
    prediction into the input of the first step drawn after it."""
    ns, es = (lambda t: (nodes(t), edges(t)))(to_dot(load("tasks.seq"), "CharLM", "unrolled", 10))
    fed = [(ns[a]["label"], ns[b]["label"]) for a, b, e in es if e.get("color") == GENERATION[1]]
    assert fed == [("char_1\\n~ categorical", "char_1"), ("char_2\\n~ categorical", "char_2"),
                   ("char_3\\n~ categorical", "…"), ("…", "char_7"), ("char_8\\n~ categorical", "char_8"),
                   ("char_9\\n~ categorical", "char_9")]


NORMAL = """cell R(I = 3, H = 4) {
    in    x: [I]
    state h: [H] = zeros
    param W: [H, I]
    param U: [H, H]
    h = tanh(W @ x + U @ h[t-1])
    out y = h
}
model Pen(D = 3, H = 4) {
    r = R(D, H) over y[t-1]
    out y: [D] ~ normal(linear(r.y, D), 0.1)
}
"""


def test_a_normal_prediction_starts_from_zeros():
    program = seqdsl.load(NORMAL)
    rolled = nodes(to_dot(program, "Pen", "rolled"))
    assert labelled(rolled, r"y ~ normal\(σ=0\.1\)") and labelled(rolled, r"y\[t-1\]\\n\(0 at t=1\)")
    assert labelled(rolled, r"y: seq\[3\]\\n\(observed\)")
    text = to_dot(program, "Pen", "unrolled", 3)
    ns, es = nodes(text), edges(text)
    assert labelled(ns, "y_0 = 0") and labelled(ns, r"y_3\\n~ normal\(σ=0\.1\)")
    fed = [(ns[a]["label"], ns[b]["label"]) for a, b, e in es if e.get("color") == GENERATION[1]]
    assert fed == [("y_1\\n~ normal(σ=0.1)", "y_1"), ("y_2\\n~ normal(σ=0.1)", "y_2")]


def test_a_per_sample_prediction_says_what_it_is():
    """Sentiment predicts one label per sample: drawn `label ~ categorical`, nothing fed back."""
    for view, label in (("rolled", "label ~ categorical"), ("unrolled", "label\\n~ categorical")):
        text = to_dot(load("tasks.seq"), "Sentiment", view)
        assert labelled(nodes(text), re.escape(label))
        assert GENERATION[1] not in text and OBSERVED[0] not in text


def predicts(program, name) -> bool:
    return any(d["op"] == Op.OUTPUT and d.get("dist") for _, d in program.definitions[name].graph.nodes(data=True))


ORDINARY = [(p, n) for p, n in all_definitions() if not predicts(spec_program(p), n)]


@pytest.mark.parametrize("path,name", ORDINARY, ids=[f"{p.stem}-{n}" for p, n in ORDINARY])
def test_models_that_predict_nothing_are_drawn_as_before(path, name):
    """No observed words, no generation edges, no `~` and no new legend entry (their DOT is also
    pinned by the goldens, tests/test_render.py)."""
    program = seqdsl.load(path)
    for view in ("rolled", "unrolled"):
        text = to_dot(program, name, view, 4)
        assert OBSERVED[0] not in text and OBSERVED[1] not in text and GENERATION[1] not in text
        assert "~" not in text and "teacher forcing" not in text

"""What generate() may choose and how its options combine: never PAD or START (ids 0 and 1) in a
model that reads its previous prediction, even where the model prefers them; beam search after a
prompt over a batch that attends to an encoder; options that would do nothing are errors."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import ROOT

import seqdsl
from seqdsl.vocab import END, PAD, START

torch = pytest.importorskip("torch")
SIZES = {"Vs": 10, "Vt": 10, "E": 4, "H": 6}
SRC = np.array([[4, 5, 6], [7, 8, 9]])


def attn(backend: str, prefer=()):
    """AttnTranslate in float64 with seeded weights; `prefer`: ids whose logits get +20."""
    exe = seqdsl.compile(ROOT / "specs/attention.seq", name="AttnTranslate", backend=backend, sizes=SIZES,
                         dtype="float64")
    exe.init_params(0)  # (both backends draw the same)
    if backend == "torch":
        exe = exe.eval()
    with torch.no_grad():
        for i in prefer:
            exe.params["word.b"][i] += 20.0
    return exe


def src(backend):
    return SRC if backend == "numpy" else torch.as_tensor(SRC)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_pad_and_start_are_never_chosen(backend):
    exe = attn(backend, prefer=(PAD, START))
    for options in ({}, {"strategy": "sample", "seed": 1}, {"beam": 3}):
        g = exe.generate(src=src(backend), max_len=6, **options)
        real = np.arange(g.tokens.shape[1])[None] < g.lengths[:, None]
        assert (g.tokens[real] > START).all(), (options, g.tokens)
        assert (g.tokens[~real] == PAD).all()
        # the log-probabilities are the model's own: the preferred ids keep their probability
        assert (g.log_probs[real] < -15).all(), options


def test_a_vocabulary_of_two_is_not_cut():
    """(with no id past START there is nothing else to choose)"""
    from seqdsl.backends.search import _first_choice

    stepper = type("S", (), {"predicted": {"y": {"classes": START + 1}}})()
    assert _first_choice(stepper, "y") == 0
    stepper.predicted["y"]["classes"] = END + 1
    assert _first_choice(stepper, "y") == START + 1


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_beam_search_after_a_prompt_over_a_batch_with_a_memory(backend):
    """The prompt is fed to each sample once, then the beams of each sample share its memory: the
    batch gives each sample's tokens and scores alone (it used to fail to broadcast the memory's
    projection, made for B rows, against B × beam)."""
    exe = attn(backend)
    s = src(backend)
    both = exe.generate(src=s, prompt=np.array([4, 5]), beam=3, max_len=5)
    for b in range(2):
        alone = exe.generate(src=s[b:b + 1], prompt=np.array([4, 5]), beam=3, max_len=5)
        n = alone.lengths[0]
        assert both.lengths[b] == n
        np.testing.assert_array_equal(both.tokens[b, :n], alone.tokens[0, :n])
        np.testing.assert_allclose(both.scores[b], alone.scores[0], rtol=0, atol=1e-10)


@pytest.mark.parametrize("options,message", [
    ({"strategy": "greedy", "beam": 3}, "beam=3 would do nothing with strategy='greedy'"),
    ({"strategy": "sample", "beam": 2}, "beam=2 would do nothing with strategy='sample'"),
    ({"temperature": 0.5}, "temperature=0.5 would do nothing with strategy='greedy'"),
    ({"beam": 2, "top_k": 3}, "top_k=3 would do nothing with strategy='beam'"),
    ({"strategy": "sample", "length_penalty": 0.5}, "length_penalty=0.5 would do nothing with strategy='sample'"),
    ({"beam": 2, "length_penalty": -1.0}, r"length_penalty must be a number >= 0 \(0 ranks by log p alone"),
])
def test_options_that_would_do_nothing_are_errors(options, message):
    exe = attn("numpy")
    with pytest.raises(ValueError, match=message):
        exe.generate(src=SRC, max_len=3, **options)


def test_a_model_that_chooses_once_checks_its_options_too():
    """Sentiment predicts its label once: beam search there is greedy (the choices are independent),
    and an option that would do nothing is the same error as for a model that steps."""
    exe = seqdsl.compile(ROOT / "specs/tasks.seq", name="Sentiment", sizes={"V": 7, "E": 3, "H": 4})
    exe.init_params(0)
    words = np.array([[4, 5, 6], [6, 5, 4]])
    np.testing.assert_array_equal(exe.generate(words=words, beam=3).tokens, exe.generate(words=words).tokens)
    with pytest.raises(ValueError, match="beam=3 would do nothing with strategy='greedy'"):
        exe.generate(words=words, strategy="greedy", beam=3)
    with pytest.raises(ValueError, match="temperature=0.5 would do nothing with strategy='beam'"):
        exe.generate(words=words, beam=2, temperature=0.5)

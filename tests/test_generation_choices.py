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


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_greedy_log_probs_are_worked_out_on_first_read(backend):
    """Greedy decoding leaves scores, log_probs and outputs to their first read: read after later
    calls (which step the same module again), they are those of their own call, as a re-scoring
    gives them; the result unpacks like a tuple."""
    exe = attn(backend)
    first = exe.generate(src=src(backend), max_len=5)
    assert first._rest is None and first._pending is not None  # nothing worked out yet
    other = exe.generate(src=src(backend)[::-1].copy() if backend == "numpy" else src(backend).flip(0), max_len=7)
    _ = other.scores
    tokens, lengths, scores, log_probs, outputs = first
    assert first._pending is None
    words = np.where(tokens == PAD, END, tokens)  # (past a sequence's end: any id, zeroed below)
    src_ = src(backend)
    word = words if backend == "numpy" else torch.as_tensor(words)
    out, _ = exe(src=src_, word=word)
    z = np.asarray(out["word"]) if backend == "numpy" else out["word"].detach().numpy()
    logp = z - np.log(np.exp(z - z.max(-1, keepdims=True)).sum(-1, keepdims=True)) - z.max(-1, keepdims=True)
    want = np.take_along_axis(logp, words[..., None], -1)[..., 0]
    real = np.arange(tokens.shape[1])[None] < lengths[:, None]
    np.testing.assert_allclose(log_probs, np.where(real, want, 0.0), atol=1e-10)
    np.testing.assert_allclose(scores, log_probs.sum(1), atol=1e-12)
    assert outputs["attn"].shape == tokens.shape + (SRC.shape[1],)
    assert len(first) == 5 and "scores=" in repr(first)
    assert first[0] is tokens and first[-1] is outputs and list(first._asdict()) == list(first._fields)
    import pickle

    late = exe.generate(src=src(backend), max_len=5)  # pickled before it is read: worked out, then kept
    back = pickle.loads(pickle.dumps(late))
    np.testing.assert_array_equal(back.tokens, late.tokens)
    np.testing.assert_allclose(back.log_probs, log_probs, atol=0)


def test_the_torch_step_module_runs_one_step_without_a_loop():
    """Generation's step module (torch): each cell is straight-line code on the step's values, and
    is refused more than one step."""
    exe = attn("torch")
    ns = exe.variants.namespace(False, False, "step")
    source = exe.variants.sources[(False, False, "step", ())][0]
    cell = source[source.index("def cell_BahdanauDecoder"):source.index("def model_")]
    assert "for t in" not in cell and "_stack(" not in cell and "t = 0" in cell
    state = exe.begin(src=src("torch"))
    fn = ns["cell_BahdanauDecoder__E_4__H_6"]
    two = torch.zeros(2, 2, 4, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"the step module takes the values of one step, \(B, ...\), got \(2, 2, 4\)"):
        fn(exe.params, "dec.", two, {"h": state["dec.h"], "c": state["dec.c"]}, {"m": state["dec.m"]})

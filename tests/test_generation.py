"""Predicted outputs in generation and learning, on every bundled model that reads its previous
prediction (`y[t-1]`), NumPy and torch (fused and not), float64:

- begin() + step() with the true tokens give exactly the teacher-forced call's outputs (with and
  without source lengths);
- greedy decoding is beam search of width 1; a beam as wide as every sequence finds the best one
  that brute-force enumeration and teacher-forced rescoring find (length_penalty 1 and 0);
- sampling is reproducible from its seed, the same on both backends, and draws from the model's
  distribution (temperature, top_k);
- what generate() returns (lengths, scores, log-probs, attention) is what teacher-forced rescoring
  of its tokens gives; a prompt is continued from the teacher-forced state, one step() per token;
- loss() is torch's cross-entropy over real positions, and NumPy's loss_and_grad gradients are
  torch autograd's and finite differences'.
"""

from __future__ import annotations

import itertools
from functools import lru_cache

import numpy as np
import pytest
from conftest import ROOT, SPEC_FILES

import seqdsl
from seqdsl.vocab import END, PAD, START

torch = pytest.importorskip("torch")

SIZES = {"H": 8, "E": 4, "D": 8, "Vs": 11, "Vt": 5, "V": 5}  # a 5-token target vocabulary: ids 0..4
TOL = 1e-10
BACKENDS = [("numpy", True), ("torch", True), ("torch", False)]
BACKEND_IDS = ["numpy", "torch", "torch-loop"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@lru_cache(maxsize=None)
def program(path):
    return seqdsl.load(path)


def build(path, name, backend="numpy", fused=True):
    """A float64 executable at SIZES (torch in eval mode); cached: tests set the weights they use.
    `build(p, n)` and `build(p, n, "numpy", True)` are the same one (the discovery below compiles it)."""
    return _build(path, name, backend, fused)


@lru_cache(maxsize=None)
def _build(path, name, backend, fused):
    exe = seqdsl.compile(program(path), name=name, backend=backend, fused=fused, dtype="float64", sizes=SIZES)
    return exe.eval() if backend == "torch" else exe


def _discover():
    """(path, name) of every definition in specs/ with a predicted output, and of those that read one at t-1."""
    predicting, stepping = [], []
    for path in SPEC_FILES:
        for name, d in program(path).definitions.items():
            if d.file != str(path):
                continue
            pred = build(path, name)._ns["PREDICTED"]
            if pred:
                predicting.append((path, name))
            if any(p["previous"] for p in pred.values()):
                stepping.append((path, name))
    return predicting, stepping


PREDICTING, STEPPING = _discover()
STEP_IDS = [f"{p.stem}.{n}" for p, n in STEPPING]
PRED_IDS = [f"{p.stem}.{n}" for p, n in PREDICTING]


def test_discovery_finds_the_bundled_models():
    names = {n for _, n in STEPPING}
    assert {"CharLM", "Caption", "Translate", "AttnTranslate", "LuongTranslate"} <= names
    assert "Sentiment" in {n for _, n in PREDICTING} - names  # predicts, but reads no previous prediction


# ---- helpers ---------------------------------------------------------------------------------
def close(what, got, want, tol=TOL):
    """|got - want| <= tol everywhere, same shapes; NaN (or inf) is never equal."""
    got, want = to_np(got), to_np(want)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    assert np.isfinite(got).all() and np.isfinite(want).all(), f"{what}: not finite"
    err = float(np.abs(got - want).max()) if got.size else 0.0
    assert err <= tol, f"{what}: max |diff| {err:.3g} > {tol:g}"


def to_np(x):
    return x.detach().cpu().numpy() if torch.is_tensor(x) else np.asarray(x)


def conv(exe, x):
    """A NumPy array (or a dict of them) as the executable takes it: a tensor for torch."""
    if isinstance(x, dict):
        return {k: conv(exe, v) for k, v in x.items()}
    if exe.backend != "torch" or not isinstance(x, np.ndarray):
        return x
    return torch.from_numpy(np.ascontiguousarray(x))


def target(exe) -> str:
    return next(k for k, p in exe._ns["PREDICTED"].items() if p["previous"])


def seq_inputs(exe) -> list:
    """The model's sequence inputs other than its predictions (what `lengths=` may name at begin())."""
    pred = exe._ns["PREDICTED"]
    return [k for k, v in exe._ns["INPUTS"].items() if v[3] and k not in pred]


def set_weights(exe, seed=0, scale=1.0, end_bias=None):
    """Draw the declared weights from `seed` and scale them (both backends draw the same);
    `end_bias` is added to the END logit's bias of the predicted output's linear."""
    exe.init_params(seed)
    params = {k: to_np(v) * scale for k, v in exe.params.items()}
    if end_bias is not None:
        params[f"{target(exe)}.b"][END] += end_bias
    if exe.backend == "torch":
        with torch.no_grad():
            for k, p in exe.params.items():
                p.copy_(torch.from_numpy(params[k]))
    else:
        exe.params = params
    return exe


def data(exe, batch=3, steps=5, seed=0):
    """(inputs, observed): example inputs (NumPy) and a value for every predicted output."""
    rng = np.random.default_rng(seed + 100)
    ex = {k: to_np(v) for k, v in exe.example_inputs(batch=batch, steps=steps, seed=seed).items()}
    observed = {}
    for k, p in exe._ns["PREDICTED"].items():
        if k in ex:
            observed[k] = ex.pop(k)
        else:
            shape = (batch, steps) if p["per_step"] else (batch,)
            observed[k] = (rng.integers(0, p["classes"], shape) if p["dist"] == "categorical"
                           else rng.standard_normal(shape + tuple(p["dims"])))
    return ex, observed


def log_softmax(x):
    x = to_np(x)
    z = x - x.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def begin(exe, inputs, batch, lengths=None):
    if not inputs:
        return exe.begin(batch=batch)
    return exe.begin(**conv(exe, inputs), lengths=conv(exe, lengths))


def run_steps(exe, inputs, tokens, lengths=None):
    """begin, then one step per token with the previous true token (START first): {output: (B, T, ...)}."""
    y = target(exe)
    state = begin(exe, inputs, tokens.shape[0], lengths)
    prev = np.full(tokens.shape[0], START, np.int64)
    got = {}
    for t in range(tokens.shape[1]):
        out, state = exe.step(state, **{y: conv(exe, prev)})
        for k, v in out.items():
            got.setdefault(k, []).append(to_np(v))
        prev = tokens[:, t]
    return {k: np.stack(v, 1) for k, v in got.items()}, state


def teacher(exe, inputs, tokens, lengths=None):
    """The teacher-forced call with `tokens` as the observed prediction: (outputs, final) as NumPy."""
    out, final = exe(**conv(exe, inputs), **{target(exe): conv(exe, tokens)}, lengths=conv(exe, lengths))
    return {k: to_np(v) for k, v in out.items()}, {k: to_np(v) for k, v in final.items()}


# ---- 1. begin + step = the teacher-forced call -------------------------------------------------
@pytest.mark.parametrize("backend,fused", BACKENDS, ids=BACKEND_IDS)
@pytest.mark.parametrize("path,name", STEPPING, ids=STEP_IDS)
def test_steps_with_true_tokens_match_teacher_forcing(path, name, backend, fused):
    exe = set_weights(build(path, name, backend, fused), seed=1, scale=2.0)
    inputs, observed = data(exe, batch=3, steps=5)
    tokens = observed[target(exe)]
    want, _ = teacher(exe, inputs, tokens)
    got, _ = run_steps(exe, inputs, tokens)
    assert set(got) == set(want), "a step gives every output of the teacher-forced call"
    for k in want:
        close(f"{name} {k}", got[k], want[k])


LENGTHS = [(p, n) for p, n in STEPPING if seq_inputs(build(p, n))]


@pytest.mark.parametrize("backend,fused", BACKENDS, ids=BACKEND_IDS)
@pytest.mark.parametrize("path,name", LENGTHS, ids=[f"{p.stem}.{n}" for p, n in LENGTHS])
def test_steps_with_source_lengths_match_teacher_forcing(path, name, backend, fused):
    exe = set_weights(build(path, name, backend, fused), seed=2, scale=2.0)
    inputs, observed = data(exe, batch=3, steps=5, seed=1)
    tokens = observed[target(exe)]
    lens = np.array([5, 2, 4])
    lengths = {k: lens for k in seq_inputs(exe)}
    want, _ = teacher(exe, inputs, tokens, lengths)
    got, _ = run_steps(exe, inputs, tokens, lengths)
    assert set(got) == set(want)
    for k in want:
        close(f"{name} {k} with lengths", got[k], want[k])
    unmasked, _ = run_steps(exe, inputs, tokens)
    y = target(exe)
    assert np.abs(unmasked[y][1] - got[y][1]).max() > 1e-6, "the lengths change the short sample"
    for b in (1, 2):  # each sample with lengths = that sample alone on its real source
        alone_in = {k: (v[b:b + 1, :lens[b]] if k in lengths else v[b:b + 1]) for k, v in inputs.items()}
        alone, _ = run_steps(exe, alone_in, tokens[b:b + 1])
        for k, v in alone.items():
            if k == "attn":
                close(f"{name} attn on padding", got[k][b, :, lens[b]:], np.zeros_like(got[k][b, :, lens[b]:]))
                close(f"{name} attn alone", got[k][b:b + 1, :, :lens[b]], v)
            else:
                close(f"{name} {k} alone", got[k][b:b + 1], v)


# ---- 2. greedy = beam of width 1 ---------------------------------------------------------------
@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("path,name", STEPPING, ids=STEP_IDS)
def test_greedy_is_beam_search_of_width_one(path, name, backend):
    exe = build(path, name, backend)
    for seed, scale in [(0, 1.0), (1, 2.0), (2, 2.0), (3, 3.0)]:
        set_weights(exe, seed, scale)
        inputs, _ = data(exe, batch=4, steps=6, seed=seed)
        kw = conv(exe, inputs) or {"batch": 4}
        greedy = exe.generate(**kw, max_len=6)
        beam1 = exe.generate(**kw, max_len=6, strategy="beam", beam=1)
        assert greedy.tokens.dtype == np.int64 and greedy.tokens.shape == beam1.tokens.shape
        np.testing.assert_array_equal(beam1.tokens, greedy.tokens, err_msg=f"seed {seed}")
        np.testing.assert_array_equal(beam1.lengths, greedy.lengths)
        close("scores", beam1.scores, greedy.scores)
        close("log_probs", beam1.log_probs, greedy.log_probs)
        for k in greedy.outputs:
            close(k, beam1.outputs[k], greedy.outputs[k])


# ---- 3. a beam as wide as every sequence = brute force ------------------------------------------
def all_hypotheses(V, L):
    """Every sequence generation can end with: END at any length <= L (no END before), or L tokens without END;
    never PAD or START (generation does not choose them)."""
    seen = set()
    for s in itertools.product(range(START + 1, V), repeat=L):
        seen.add(s[:s.index(END) + 1] if END in s else s)
    return sorted(seen)


def rescore(exe, inputs, seqs, L):
    """Teacher-forced log-probability of each sequence (sum of log-softmax at its tokens) for one input."""
    pad = np.array([list(s) + [PAD] * (L - len(s)) for s in seqs])
    n = np.array([len(s) for s in seqs])
    rep = {k: np.repeat(v, len(seqs), 0) for k, v in inputs.items()}
    out, _ = teacher(exe, rep, pad) if rep else teacher(exe, {}, pad)
    lp = np.take_along_axis(log_softmax(out[target(exe)]), pad[..., None], -1)[..., 0]
    return (lp * (np.arange(L)[None] < n[:, None])).sum(1), n


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("path,name", STEPPING, ids=STEP_IDS)
def test_full_width_beam_finds_the_best_sequence(path, name, backend):
    exe = build(path, name, backend)
    V, L = exe._ns["PREDICTED"][target(exe)]["classes"], 4
    assert V == 5
    seqs = all_hypotheses(V, L)
    assert len(seqs) == 2 ** 4 + sum(2 ** i for i in range(L))  # ids 2 (END), 3, 4: 16 without END, 15 with it
    not_greedy = 0
    for seed in (1, 2):
        set_weights(exe, seed, 3.0)
        inputs, _ = data(exe, batch=2, steps=4, seed=seed)
        kw = conv(exe, inputs) or {"batch": 2}
        greedy = exe.generate(**kw, max_len=L)
        for alpha in (1.0, 0.0):
            got = exe.generate(**kw, max_len=L, beam=V ** L, length_penalty=alpha)
            for b in range(2):
                lp, n = rescore(exe, {k: v[b:b + 1] for k, v in inputs.items()}, seqs, L)
                rank = lp / n.astype(float) ** alpha
                best = int(np.argmax(rank))
                assert np.sort(rank)[-1] - np.sort(rank)[-2] > 1e-9, "no tie at the top"
                m = got.lengths[b]
                assert tuple(got.tokens[b, :m]) == seqs[best], f"seed {seed} alpha {alpha} sample {b}"
                assert (got.tokens[b, m:] == PAD).all()
                close("score", got.scores[b], lp[best], 1e-9)
                not_greedy += tuple(greedy.tokens[b, :greedy.lengths[b]]) != seqs[best]
    assert not_greedy, "some best sequence is not the greedy one: the search is tested"


# ---- 4. sampling -------------------------------------------------------------------------------
@pytest.mark.parametrize("path,name", STEPPING, ids=STEP_IDS)
def test_sampling_is_reproducible_and_the_same_on_both_backends(path, name):
    np_exe = set_weights(build(path, name), seed=3, scale=1.5, end_bias=-2.0)
    th = set_weights(build(path, name, "torch"), seed=3, scale=1.5, end_bias=-2.0)
    inputs, _ = data(np_exe, batch=4, steps=5, seed=3)
    kw = inputs or {"batch": 4}
    for options in ({}, {"temperature": 0.7}, {"top_k": 2}, {"top_k": 9, "temperature": 1.3}):
        a = np_exe.generate(**kw, max_len=30, strategy="sample", seed=7, **options)
        b = np_exe.generate(**kw, max_len=30, strategy="sample", seed=7, **options)
        c = np_exe.generate(**kw, max_len=30, strategy="sample", seed=8, **options)
        t = th.generate(**conv(th, kw), max_len=30, strategy="sample", seed=7, **options)
        np.testing.assert_array_equal(a.tokens, b.tokens)
        np.testing.assert_array_equal(a.tokens, t.tokens, err_msg=f"numpy and torch, {options}")
        np.testing.assert_array_equal(a.lengths, t.lengths)
        close("torch scores", t.scores, a.scores)
        assert a.lengths.max() > 5
        assert a.tokens.shape != c.tokens.shape or (a.tokens != c.tokens).any(), f"seed 8 = seed 7, {options}"
        if options.get("top_k") == 9:  # a top_k of the vocabulary (5) or more cuts nothing
            whole = np_exe.generate(**kw, max_len=30, strategy="sample", seed=7, temperature=1.3)
            np.testing.assert_array_equal(a.tokens, whole.tokens)
        if options.get("top_k") == 2:  # every token is one of the 2 likeliest at its step, past PAD and START
            want = rescore_generated(np_exe, inputs, a)
            top2 = np.argsort(-want["logp"][..., START + 1:], -1)[..., :2] + START + 1
            real = np.arange(a.tokens.shape[1])[None] < a.lengths[:, None]
            assert ((top2 == a.tokens[..., None]).any(-1) | ~real).all()


def test_sampling_draws_from_the_distribution():
    """The first token of many samples: frequencies within 5 standard deviations of the model's
    probabilities over the ids past PAD and START (never chosen), tempered by `temperature` and cut
    to the `top_k` likeliest; the log-probabilities reported are the model's own."""
    exe = set_weights(build(*_charlm()), seed=4, scale=2.0)
    N = 4000
    out, _ = exe.step(exe.begin(batch=1), char=np.array([START]))
    logp = log_softmax(out["char"][0])
    allowed = np.where(np.arange(logp.size) > START, logp, -np.inf)
    for temperature, top_k in [(1.0, None), (0.5, None), (2.0, 3)]:
        z = allowed / temperature
        if top_k:
            z = np.where(z < np.sort(z)[-top_k], -np.inf, z)
        p = np.exp(log_softmax(z))
        g = exe.generate(batch=N, max_len=1, strategy="sample", seed=5, temperature=temperature, top_k=top_k)
        freq = np.bincount(g.tokens[:, 0], minlength=p.size) / N
        assert (np.abs(freq - p) <= 5 * np.sqrt(p * (1 - p) / N) + 1e-12).all(), (freq, p)
        close("log_probs are the model's", g.log_probs[:, 0], logp[g.tokens[:, 0]])


def _charlm():
    return next((p, n) for p, n in STEPPING if n == "CharLM")


# ---- 5. what generate() returns = teacher-forced rescoring of its tokens ----------------------
def rescore_generated(exe, inputs, g, src_lengths=None, prompt=None):
    """Teacher-forced outputs for the generated tokens (after the prompt), with their lengths:
    {"logp": (B, L, V) log-softmax, other outputs (B, L, ...)}."""
    y = target(exe)
    tokens, lens = g.tokens, g.lengths
    if prompt is not None:
        tokens, lens = np.concatenate([prompt, tokens], 1), lens + prompt.shape[1]
    lengths = {**(src_lengths or {}), y: lens}
    out, _ = teacher(exe, inputs, tokens, lengths)
    P = 0 if prompt is None else prompt.shape[1]
    res = {k: v[:, P:] for k, v in out.items() if k != y}
    res["logp"] = log_softmax(out[y])[:, P:]
    return res


def check_generated(exe, inputs, g, max_len, src_lengths=None, prompt=None):
    B, L = g.tokens.shape
    assert g.lengths.shape == (B,) and g.scores.shape == (B,) and g.log_probs.shape == (B, L)
    assert L <= max_len and L == g.lengths.max()
    want = rescore_generated(exe, inputs, g, src_lengths, prompt)
    real = np.arange(L)[None] < g.lengths[:, None]
    for b in range(B):
        m = g.lengths[b]
        toks = g.tokens[b]
        assert (toks[m:] == PAD).all(), "padding after the end"
        assert END not in toks[:m - 1], "no end token before the last"
        assert toks[m - 1] == END or m == max_len, "a sequence shorter than max_len ends with END"
    lp = np.take_along_axis(want["logp"], g.tokens[..., None], -1)[..., 0]
    close("log_probs", g.log_probs, np.where(real, lp, 0.0))
    close("scores", g.scores, np.where(real, lp, 0.0).sum(1))
    assert set(g.outputs) == set(want) - {"logp"}
    for k, v in g.outputs.items():
        mask = real.reshape(real.shape + (1,) * (v.ndim - 2))
        close(k, v, np.where(mask, want[k], 0.0))


STRATEGIES = [{"strategy": "greedy"}, {"strategy": "sample", "seed": 3}, {"strategy": "beam", "beam": 3},
              {"strategy": "beam", "beam": 4, "length_penalty": 0.0}]


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("options", STRATEGIES, ids=["greedy", "sample", "beam", "beam-lp0"])
@pytest.mark.parametrize("path,name", STEPPING, ids=STEP_IDS)
def test_generated_is_consistent_with_teacher_forced_rescoring(path, name, options, backend):
    exe = set_weights(build(path, name, backend), seed=5, scale=2.0, end_bias=-1.0)
    inputs, _ = data(exe, batch=4, steps=6, seed=5)
    src_lengths = {k: np.array([6, 2, 4, 1]) for k in seq_inputs(exe)} or None
    for lengths in ([None, src_lengths] if src_lengths else [None]):
        kw = conv(exe, inputs) or {"batch": 4}
        g = exe.generate(**kw, max_len=7, lengths=conv(exe, lengths), **options)
        check_generated(exe, inputs, g, 7, lengths)


# ---- 6. CharLM: a prompt, one step per token -------------------------------------------------------
class CountSteps:
    """Wraps an executable's stepper: counts step() calls, records the states they get, and checks
    that each runs one time step."""

    def __init__(self, exe, monkeypatch):
        self.stepper = exe._stepper()
        self.calls, self.states = 0, []
        inner = self.stepper.step

        def step(state, previous, check=True):
            self.calls += 1
            self.states.append({k: to_np(v) for k, v in state.items()})
            assert all(np.shape(v)[0] == np.shape(next(iter(state.values())))[0] for v in previous.values())
            return inner(state, previous, check)

        monkeypatch.setattr(self.stepper, "step", step)
        for masked in (False, True):  # the step modules' own entry point
            ns = self.stepper.ns("step", masked)
            monkeypatch.setitem(ns, "forward", self.one_step(ns["forward"], exe, ns["STEP_VALUES"]))

    @staticmethod
    def one_step(forward, exe, step_values):
        """The previous predictions a step module gets: one step's values (B, ...) (torch) or a
        sequence of one step (B, 1, ...) (NumPy), never the prefix again."""
        def checked(params, inputs, state=None):
            for k, v in inputs.items():
                if k in exe._ns["PREDICTED"]:
                    p = exe._ns["PREDICTED"][k]
                    rank = 1 + (0 if p["dist"] == "categorical" else len(p["dims"]))
                    if step_values:
                        assert len(v.shape) == rank, "a step runs one time step, never the prefix again"
                    else:
                        assert len(v.shape) == rank + 1 and v.shape[1] == 1, "one step, never the prefix again"
            return forward(params, inputs, state)
        return checked


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_charlm_continues_a_prompt_one_step_per_token(backend, monkeypatch):
    exe = set_weights(build(*_charlm(), backend), seed=6, scale=2.0)
    rng = np.random.default_rng(6)
    prompt = rng.integers(3, 5, (3, 4))
    counter = CountSteps(exe, monkeypatch)
    g = exe.generate(batch=3, max_len=6, prompt=prompt, strategy="greedy")
    assert counter.calls == 4 + g.tokens.shape[1]
    _, final = teacher(exe, {}, prompt)
    assert {"r.h", "r.c"} <= set(counter.states[4])
    for k, v in counter.states[4].items():
        close(f"state {k} after the prompt", v, final[k])
    check_generated(exe, {}, g, 6, prompt=prompt)
    one = exe.generate(batch=3, max_len=6, prompt=prompt[0], strategy="greedy")  # (P,): every sample
    np.testing.assert_array_equal(one.tokens[0], g.tokens[0])


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_prompt_ids_are_checked(backend):
    from seqdsl.backends.validate import InputError

    exe = build(*_charlm(), backend)
    for bad in ([3, -1], [5], [[4], [-2]]):  # a negative id must not wrap around to the last token
        with pytest.raises(InputError, match=r"CharLM: the prompt must hold token ids in \[0, 5\)"):
            exe.generate(batch=2, max_len=3, prompt=np.array(bad))


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("options", [{"strategy": "greedy"}, {"strategy": "sample", "seed": 1},
                                     {"strategy": "beam", "beam": 3}], ids=["greedy", "sample", "beam"])
def test_generation_calls_step_once_per_token(backend, options, monkeypatch):
    exe = set_weights(build(*_charlm(), backend), seed=7, scale=2.0, end_bias=-1e3)  # END never chosen
    counter = CountSteps(exe, monkeypatch)
    prompt = np.array([4, 3, 4])
    for max_len in (2, 8, 32):
        counter.calls = 0
        g = exe.generate(batch=2, max_len=max_len, prompt=prompt, **options)
        assert (g.lengths == max_len).all() and g.tokens.shape == (2, max_len)
        assert counter.calls == len(prompt) + max_len, f"max_len {max_len}"


# ---- 7. loss and its gradients -----------------------------------------------------------------
def hand_loss(exe, inputs, observed, lengths):
    """torch.nn.functional.cross_entropy of the teacher-forced logits (the Gaussian NLL of a normal
    prediction, torch.nn.functional.gaussian_nll_loss's terms summed over the vector), padded
    positions ignored."""
    out, _ = exe(**conv(exe, inputs), **conv(exe, observed), lengths=conv(exe, lengths))
    total = 0.0
    for k, p in exe._ns["PREDICTED"].items():
        if p["dist"] == "normal":
            mean, y = torch.as_tensor(to_np(out[k])), torch.as_tensor(np.asarray(observed[k]))
            var = torch.full_like(mean, p["std"] ** 2)
            each = torch.nn.functional.gaussian_nll_loss(mean, y, var, full=True, reduction="none")
            total += float(each.sum(-1).mean())  # (per-sample predictions here: no lengths apply)
            continue
        logits = torch.as_tensor(to_np(out[k]))
        y = torch.as_tensor(observed[k]).clone()
        axes = exe._ns["OUTPUT_AXES"].get(k) or ()
        if p["per_step"] and lengths and axes and axes[0] in lengths:
            y[torch.arange(y.shape[1])[None] >= torch.as_tensor(lengths[axes[0]])[:, None]] = -100
        total += float(torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1),
                                                         ignore_index=-100))
    return total


def _loss_lengths(exe, with_lengths):
    if not with_lengths:
        return None
    seqs = [k for k, v in exe._ns["INPUTS"].items() if v[3]]
    return {k: np.array([5, 2, 4]) for k in seqs} or None


@pytest.mark.parametrize("with_lengths", [False, True], ids=["full", "lengths"])
@pytest.mark.parametrize("path,name", PREDICTING, ids=PRED_IDS)
def test_loss_is_cross_entropy_over_real_positions(path, name, with_lengths):
    np_exe = set_weights(build(path, name), seed=8, scale=2.0)
    inputs, observed = data(np_exe, batch=3, steps=5, seed=8)
    lengths = _loss_lengths(np_exe, with_lengths)
    want = hand_loss(np_exe, inputs, observed, lengths)
    for backend, fused in BACKENDS:
        exe = set_weights(build(path, name, backend, fused), seed=8, scale=2.0)
        got, parts = exe.loss(**conv(exe, inputs), **conv(exe, observed), lengths=conv(exe, lengths), parts=True)
        close(f"{backend} loss", got, want, 1e-12)
        close("parts", sum(to_np(v) for v in parts.values()), to_np(got), 1e-12)
    total, parts, _ = np_exe.loss_and_grad(**inputs, **observed, lengths=lengths)
    close("loss_and_grad's loss", total, want, 1e-12)
    if with_lengths and lengths:  # the lengths matter
        assert abs(hand_loss(np_exe, inputs, observed, None) - want) > 1e-6


@pytest.mark.parametrize("with_lengths", [False, True], ids=["full", "lengths"])
@pytest.mark.parametrize("path,name", PREDICTING, ids=PRED_IDS)
def test_loss_gradients_match_torch_autograd_and_finite_differences(path, name, with_lengths):
    np_exe = set_weights(build(path, name), seed=9, scale=2.0)
    inputs, observed = data(np_exe, batch=3, steps=5, seed=9)
    lengths = _loss_lengths(np_exe, with_lengths)
    total, _, grads = np_exe.loss_and_grad(**inputs, **observed, lengths=lengths)
    for fused in (True, False):
        th = set_weights(build(path, name, "torch", fused), seed=9, scale=2.0)
        th.zero_grad()
        t_in = conv(th, inputs)
        floats = {k: v.clone().requires_grad_(True) for k, v in t_in.items() if v.is_floating_point()}
        loss = th.loss(**{**t_in, **floats}, **conv(th, observed), lengths=conv(th, lengths))
        loss.backward()
        close("loss", loss, total, 1e-12)
        for k, p in th.params.items():
            g = grads["params"][k]
            err = np.abs(to_np(p.grad) - g).max() / max(np.abs(g).max(), 1e-12)
            assert err <= 1e-9, f"{name} d loss / d {k}: relative error {err:.3g} (fused={fused})"
        for k, v in floats.items():
            close(f"d loss / d {k}", grads["inputs"][k], v.grad, 1e-12)
    # finite differences on a few entries of a few parameters
    eps = 1e-6
    rng = np.random.default_rng(9)
    names = sorted(np_exe.params)
    for k in [names[0], names[len(names) // 2], names[-1]]:
        for _ in range(2):
            i = tuple(rng.integers(0, s) for s in np_exe.params[k].shape)
            saved = np_exe.params[k][i]
            np_exe.params[k][i] = saved + eps
            up = np_exe.loss(**inputs, **observed, lengths=lengths)
            np_exe.params[k][i] = saved - eps
            down = np_exe.loss(**inputs, **observed, lengths=lengths)
            np_exe.params[k][i] = saved
            fd, g = (up - down) / (2 * eps), grads["params"][k][i]
            assert abs(fd - g) <= 1e-9 + 1e-6 * abs(g), f"d loss / d {k}{i}: finite differences {fd}, grads {g}"


# ---- a model that predicts a real vector: out y: [D] ~ normal(mean, std) ---------------------------
FORECAST = """
use "lstm.seq"

model Forecast(D = 3, H = 8) {
    in  ctx: seq[D]
    enc = LSTM(D, H) over ctx
    dec = LSTM(D, H) over y[t-1] from enc.final
    out y: [D] ~ normal(linear(dec.y, D), 0.5)
}
"""


@pytest.mark.parametrize("backend,fused", BACKENDS, ids=BACKEND_IDS)
def test_normal_prediction_steps_loss_and_gradients(backend, fused):
    """Steps from zeros (y[t-1] at the first step) = teacher forcing, with and without lengths; the
    loss is the Gaussian NLL over real positions, its gradients torch autograd's."""
    exe = seqdsl.compile(FORECAST, backend=backend, fused=fused, dtype="float64")
    exe = exe.eval() if backend == "torch" else exe
    assert exe._ns["PREDICTED"]["y"]["previous"] and exe._ns["PREDICTED"]["y"]["dist"] == "normal"
    rng = np.random.default_rng(10)
    ctx, y = rng.standard_normal((3, 4, 3)), rng.standard_normal((3, 5, 3))
    for lengths in (None, {"ctx": np.array([4, 2, 3])}):
        out, _ = exe(ctx=conv(exe, ctx), y=conv(exe, y), lengths=conv(exe, lengths))
        state = exe.begin(ctx=conv(exe, ctx), lengths=conv(exe, lengths))
        prev = np.zeros((3, 3))
        for t in range(5):
            o, state = exe.step(state, y=conv(exe, prev))
            close(f"mean at step {t}", o["y"], out["y"][:, t])
            prev = y[:, t]
    lengths = {"ctx": np.array([4, 2, 3]), "y": np.array([5, 1, 3])}
    out, _ = exe(ctx=conv(exe, ctx), y=conv(exe, y), lengths=conv(exe, lengths))
    mean, real = to_np(out["y"]), np.arange(5)[None] < lengths["y"][:, None]
    nll = (0.5 * ((y - mean) / 0.5) ** 2 + np.log(0.5) + 0.5 * np.log(2 * np.pi)).sum(-1)
    loss = exe.loss(ctx=conv(exe, ctx), y=conv(exe, y), lengths=conv(exe, lengths))
    close("normal loss", loss, (nll * real).sum() / real.sum(), 1e-12)
    if backend == "torch":
        loss.backward()
        np_exe = seqdsl.compile(FORECAST, dtype="float64")
        total, _, grads = np_exe.loss_and_grad(ctx=ctx, y=y, lengths=lengths)
        close("loss_and_grad", total, loss, 1e-12)
        for k, p in exe.params.items():
            g = grads["params"][k]
            close(f"d loss / d {k}", g, p.grad, 1e-9 * max(1.0, float(np.abs(g).max())))


# ---- a model that predicts without reading its previous prediction ------------------------------

TAGGER = """use "lstm.seq"
model Tagger(V = 11, H = 5, K = 4) {
    in  words: seq<int>
    r = LSTM(V, H) over onehot(words, V)
    out tag ~ categorical(linear(r.y, K))      # one choice per position, each on its own
}
"""


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_choose_once_without_feedback(backend):
    """Sentiment (a label per sample) and a tagger (a tag per step, with lengths): one call, the
    argmax at each real position; PAD past a sample's length; beam search chooses the same."""
    conv = (lambda a: torch.from_numpy(np.asarray(a))) if backend == "torch" else np.asarray
    sent = seqdsl.compile(ROOT / "specs/tasks.seq", name="Sentiment", backend=backend, dtype="float64",
                          sizes={"V": 11, "E": 4, "H": 8})
    words = np.random.default_rng(0).integers(0, 11, (3, 6))
    logits = np.asarray(sent._to_numpy(sent(words=conv(words))[0]["label"]))
    g = sent.generate(words=conv(words))
    assert g.tokens.tolist() == logits.argmax(-1)[:, None].tolist() and g.lengths.tolist() == [1, 1, 1]
    np.testing.assert_allclose(g.scores, (logits - np.log(np.exp(logits).sum(-1, keepdims=True))).max(-1),
                               atol=1e-12)
    tagger = seqdsl.compile(TAGGER.replace('use "lstm.seq"', (ROOT / "specs/lstm.seq").read_text()),
                            backend=backend, dtype="float64")
    lengths = np.array([6, 2, 4])
    out = tagger._to_numpy(tagger(words=conv(words), lengths={"words": lengths})[0]["tag"])
    g = tagger.generate(words=conv(words), lengths={"words": lengths})
    want = np.where(np.arange(6)[None] < lengths[:, None], out.argmax(-1), 0)
    assert g.tokens.tolist() == want.tolist() and g.lengths.tolist() == lengths.tolist()
    assert tagger.generate(words=conv(words), lengths={"words": lengths}, beam=3).tokens.tolist() == want.tolist()
    a = tagger.generate(words=conv(words), strategy="sample", seed=4).tokens
    assert a.tolist() == tagger.generate(words=conv(words), strategy="sample", seed=4).tokens.tolist()


@pytest.mark.parametrize("spec", ["lstm", "gru", "rnn"])
def test_one_step_runs_the_cell_kernel(spec):
    """A call of one step on a recognised cell runs torch's cell kernel (torch._VF.lstm_cell, ...),
    with and without lengths, and gives what the generated loop gives, values and gradients."""
    fused = seqdsl.compile(ROOT / f"specs/{spec}.seq", backend="torch", dtype="float64")
    loop = seqdsl.compile(ROOT / f"specs/{spec}.seq", backend="torch", dtype="float64", fused=False)
    loop.load_state_dict(fused.state_dict())
    assert "_cell(x__in[:, 0]" in fused.source
    ins = fused.example_inputs(batch=3, steps=1)
    state = {s: torch.randn((3,) + tuple(d), dtype=torch.float64) for s, d in fused._ns["STATE_SHAPES"].items()}
    for lengths in (None, {"x": np.array([1, 1, 1])}):
        got = fused(**ins, state=state, lengths=lengths)
        want = loop(**ins, state=state, lengths=lengths)
        for a, b in ((got[0], want[0]), (got[1], want[1])):
            for k in b:
                assert torch.allclose(a[k], b[k], atol=1e-12, rtol=0), k
        g1 = torch.autograd.grad(got[0]["y"].sum(), list(fused.params.values()))
        g2 = torch.autograd.grad(want[0]["y"].sum(), list(loop.params.values()))
        assert all(torch.allclose(a, b, atol=1e-12) for a, b in zip(g1, g2))


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_step_checks_its_state_and_previous(backend):
    """step() names what is wrong with the state or the previous predictions it is given."""
    from seqdsl.backends.validate import InputError, UnknownName

    path = next(p for p, n in STEPPING if n == "AttnTranslate")
    exe = build(path, "AttnTranslate", backend)
    src = np.array([[4, 5, 6], [7, 8, 9]])
    state = exe.begin(src=src if backend == "numpy" else torch.as_tensor(src), lengths={"src": np.array([3, 2])})
    assert "lengths:dec.m" in state  # the attended memory's lengths travel with the state
    prev = np.array([START, START])
    exe.step(state, word=prev)
    cases = [
        ({k: v for k, v in state.items() if k != "dec.h"}, {"word": prev}, UnknownName, r"the state lacks \['dec.h'\]"),
        ({**state, "dec.x": state["dec.h"]}, {"word": prev}, UnknownName, r"has unknown entries \['dec.x'\]"),
        ({**state, "lengths:src": np.array([3, 2])}, {"word": prev}, UnknownName,
         r"has unknown entries \['lengths:src'\]"),
        (state, {"char": prev}, UnknownName, "step\\(\\) takes the previous word; got 'char'"),
        (state, {}, UnknownName, r"step\(\) needs the previous 'word' \(word=..., the start token 1"),
        (state, {"word": np.array([START])}, InputError, "differ in batch size"),
        (state, {"word": np.array([START, SIZES["Vt"]])}, InputError, r"token ids in \[0, 5\)"),
        ([1], {"word": prev}, InputError, "step\\(\\) takes the state begin\\(\\) or step\\(\\) returned, a dict"),
    ]
    for st, previous, error, message in cases:
        with pytest.raises(error, match=message):
            exe.step(st, **previous)

"""Generation's torch step module holds one step's values, (B, ...): what a model computes per step
from them and from per-sample values (an image feature added to each step's output or input, a
per-sample scale, a dot product), and an LSTM step fused into one kernel whose two halves are read
together, equal the teacher-forced call and the NumPy backend (float64)."""

from __future__ import annotations

import numpy as np
import pytest

import seqdsl

torch = pytest.importorskip("torch")

SPEC = """
use "lstm.seq"
model Cap2(D = 5, V = 9, E = 4, H = 6) {          # an image feature added to every step's output
    in  image: [D]
    feat = tanh(linear(image, H))
    dec = LSTM(E, H) over embed(word[t-1], V, E) from (h = feat, c = zeros)
    out word ~ categorical(linear(dec.y + feat, V))
    out mix = dec.y + feat
}
model Scale(D = 5, V = 9, E = 4, H = 6) {         # a per-sample number times each step's value
    in  image: [D]
    s = mean(linear(image, H))
    dec = LSTM(E, H) over embed(word[t-1], V, E)
    out word ~ categorical(linear(dec.y * s, V))
    out gate = sigmoid(dec.y @ tanh(linear(image, H)))
}
model AddIn(D = 5, V = 9, E = 4, H = 6) {         # an image feature added to every step's input
    in  image: [D]
    xin = embed(word[t-1], V, E) + tanh(linear(image, E))
    dec = LSTM(E, H) over xin
    out word ~ categorical(linear(dec.y, V))
}
cell DecL(E = 4, H = 6) {                         # an LSTM step, its h and c read together
    in     x: [E]
    state  h: [H]
    state  c: [H]
    param  W: [4*H, E]
    param  U: [4*H, H]
    i, f, g, o = split(W @ x + U @ h[t-1], 4)
    c = sigmoid(f) * c[t-1] + sigmoid(i) * tanh(g)
    h = sigmoid(o) * tanh(c)
    out y = tanh(h) + tanh(c)
}
model ML(D = 5, V = 9, E = 4, H = 6) {
    in  image: [D]
    dec = DecL(E, H) over embed(word[t-1], V, E) from (h = tanh(linear(image, H)), c = zeros)
    out word ~ categorical(linear(dec.y, V))
}
"""
IMAGE = np.random.default_rng(0).normal(size=(3, 5))
TOKENS = np.array([[4, 5, 2, 7], [8, 3, 6, 4], [2, 2, 5, 6]])


def build(name, backend):
    exe = seqdsl.compile(SPEC, name=name, backend=backend, dtype="float64")
    exe.init_params(0)
    return exe.eval() if backend == "torch" else exe


def arr(x):
    return x.detach().numpy() if torch.is_tensor(x) else np.asarray(x)


@pytest.mark.parametrize("name", ["Cap2", "Scale", "AddIn", "ML"])
def test_steps_match_teacher_forcing_and_numpy(name):
    results = {}
    for backend in ("numpy", "torch"):
        exe = build(name, backend)
        image = torch.as_tensor(IMAGE) if backend == "torch" else IMAGE
        words = torch.as_tensor(TOKENS) if backend == "torch" else TOKENS
        want, _ = exe(image=image, word=words)
        state, prev, got = exe.begin(image=image), np.full(3, 1), {k: [] for k in want}
        for t in range(TOKENS.shape[1]):
            out, state = exe.step(state, word=prev)
            for k, v in out.items():
                assert tuple(v.shape) == tuple(want[k].shape[:1] + want[k].shape[2:]), (backend, k, v.shape)
                got[k].append(arr(v))
            prev = TOKENS[:, t]
        for k in want:
            np.testing.assert_allclose(np.stack(got[k], 1), arr(want[k]), atol=1e-10, rtol=0, err_msg=f"{backend} {k}")
        results[backend] = exe.generate(image=image, max_len=5), exe.generate(image=image, max_len=5, beam=2)
    for a, b in zip(results["numpy"], results["torch"]):
        np.testing.assert_array_equal(a.tokens, b.tokens)
        np.testing.assert_allclose(a.log_probs, b.log_probs, atol=1e-10, rtol=0)
        for k in a.outputs:
            assert a.outputs[k].shape == b.outputs[k].shape
            np.testing.assert_allclose(a.outputs[k], b.outputs[k], atol=1e-10, rtol=0)


def test_the_fused_lstm_step_read_whole_is_one_value():
    """(lift_slices makes tanh(h) + tanh(c) one tanh over the fused value: torch gets [h, c] by a cat)"""
    exe = build("ML", "torch")
    exe.variants.namespace(False, False, "step")
    source = exe.variants.sources[(False, False, "step", ())][0]
    assert "torch.cat(torch._VF.lstm_cell(" in source

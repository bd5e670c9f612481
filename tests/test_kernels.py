"""The runtime kernels (seqdsl/kernels/) against torch, and which of them a generated module holds.

NumPy kernels are compared with torch's own ops in float64 (1e-10), their gradient kernels with
torch autograd; torch kernels with plain torch formulas. A generated module holds exactly the
kernels it calls (and what those call).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import seqdsl
from seqdsl.kernels import Kernels
from seqdsl.kernels import numpy_kernels as K

torch = pytest.importorskip("torch")
F = torch.nn.functional
ROOT = Path(__file__).resolve().parents[1]
RNG = np.random.default_rng(0)


def t(a):
    return torch.from_numpy(np.ascontiguousarray(a))


def close(a, b, tol=1e-10):
    a, b = np.asarray(a), np.asarray(b.detach().numpy() if hasattr(b, "detach") else b)
    assert a.shape == b.shape and not np.isnan(a).any()
    np.testing.assert_allclose(a, b, rtol=0, atol=tol)


def test_softmax_sigmoid_sigtanh():
    x = RNG.standard_normal((3, 4, 6))
    close(K._softmax(x), torch.softmax(t(x), -1))
    close(K._sigmoid(x.copy()), torch.sigmoid(t(x)))
    want = torch.cat([torch.sigmoid(t(x[..., :2])), torch.tanh(t(x[..., 2:]))], -1)
    close(K._sigtanh(x, 2), want)
    y = K._sigtanh(x, 2)
    g = RNG.standard_normal(x.shape)
    xt = t(x).requires_grad_(True)
    (torch.cat([torch.sigmoid(xt[..., :2]), torch.tanh(xt[..., 2:])], -1) * t(g)).sum().backward()
    close(K._sigtanh_bwd(g, y, 2), xt.grad)


def test_mm_is_x_times_w_transposed():
    x, w = RNG.standard_normal((2, 5, 3)), RNG.standard_normal((4, 3))
    close(K._mm(x, w), t(x) @ t(w).T)


def test_layernorm_and_its_gradient():
    x, gamma, beta = RNG.standard_normal((2, 5, 6)), RNG.standard_normal(6), RNG.standard_normal(6)
    close(K._layernorm(x, gamma, beta), F.layer_norm(t(x), (6,), t(gamma), t(beta), 1e-5))
    g = RNG.standard_normal(x.shape)
    xt, gt, bt = (t(a).requires_grad_(True) for a in (x, gamma, beta))
    (F.layer_norm(xt, (6,), gt, bt, 1e-5) * t(g)).sum().backward()
    dx, dg, db = K._layernorm_bwd(g, x, gamma)
    close(dx, xt.grad, 1e-9)
    close(dg, gt.grad, 1e-9)
    close(db, bt.grad, 1e-9)


def test_positions_follow_the_transformer_formula():
    T, D = 7, 6
    p = K._positions(T, D)
    for pos in range(T):
        for i in range(D):
            angle = pos / 10000 ** ((i - i % 2) / D)
            assert p[pos, i] == pytest.approx(np.sin(angle) if i % 2 == 0 else np.cos(angle), abs=1e-12)


@pytest.mark.parametrize("heads,causal", [(1, False), (2, True), (3, False)])
def test_attention_and_its_gradient(heads, causal):
    B, T, D = 2, 4, 6
    q, k, v = (RNG.standard_normal((B, T, D)) for _ in range(3))

    def ref(q, k, v):
        split = lambda a: a.reshape(B, T, heads, D // heads).transpose(1, 2)
        o = F.scaled_dot_product_attention(split(q), split(k), split(v), is_causal=causal)
        return o.transpose(1, 2).reshape(B, T, D)

    close(K._attention(q, k, v, heads, causal), ref(t(q), t(k), t(v)))
    g = RNG.standard_normal((B, T, D))
    qt, kt, vt = (t(a).requires_grad_(True) for a in (q, k, v))
    (ref(qt, kt, vt) * t(g)).sum().backward()
    for got, want in zip(K._attention_bwd(g, q, k, v, heads, causal), (qt, kt, vt)):
        close(got, want.grad, 1e-9)


def _key_mask(B, S, causal):
    """1 on each sample's first `length` keys (length >= 1; sample 0 has them all), 0 on its padding."""
    lengths = RNG.integers(1, S + 1, B)
    lengths[0] = S
    return (np.arange(S)[None, :] < lengths[:, None]).astype(np.float64)


@pytest.mark.parametrize("heads,causal,S", [(1, False, 4), (2, True, 4), (3, False, 5), (2, True, 6), (2, False, 3)])
def test_masked_attention_and_its_gradient(heads, causal, S):
    B, T, D = 3, 4, 6
    q, k, v = RNG.standard_normal((B, T, D)), RNG.standard_normal((B, S, D)), RNG.standard_normal((B, S, D))
    km = _key_mask(B, S, causal)
    keep = t(km != 0)[:, None, None, :]
    if causal:
        keep = keep & torch.ones(T, S, dtype=torch.bool).tril()

    def ref(q, k, v):
        split = lambda a: a.reshape(B, a.shape[1], heads, D // heads).transpose(1, 2)
        o = F.scaled_dot_product_attention(split(q), split(k), split(v), attn_mask=keep)
        return o.transpose(1, 2).reshape(B, T, D)

    out = K._masked_attention(q, k, v, km, heads, causal)
    close(out, ref(t(q), t(k), t(v)))
    g = RNG.standard_normal((B, T, D))
    qt, kt, vt = (t(a).requires_grad_(True) for a in (q, k, v))
    (ref(qt, kt, vt) * t(g)).sum().backward()
    grads = K._masked_attention_bwd(g, q, k, v, km, heads, causal)
    for got, want in zip(grads, (qt, kt, vt)):
        close(got, want.grad, 1e-9)
    assert (grads[1][km == 0] == 0).all() and (grads[2][km == 0] == 0).all()  # exactly: weight 0
    # a padding key changes nothing, whatever it holds
    k2, v2 = k.copy(), v.copy()
    k2[km == 0], v2[km == 0] = 1e3, -1e3
    np.testing.assert_array_equal(K._masked_attention(q, k2, v2, km, heads, causal), out)
    # all keys real: the unmasked kernel (the same formula to rounding)
    if S == T:
        close(K._masked_attention(q, k, v, np.ones((B, S)), heads, causal), K._attention(q, k, v, heads, causal),
              1e-12)
    from seqdsl.kernels import torch_kernels as TK

    TK._CTX.update(dtype=torch.float64)
    close(TK._masked_attention(t(q), t(k), t(v), t(km), heads, causal), out)
    close(TK._masked_attention(t(q), t(k), t(v), t(km != 0), heads, causal), out)  # a boolean mask too


def test_masked_attention_kernels_bring_only_their_own_helpers():
    numpy_kernels, torch_kernels = Kernels("numpy_kernels.py"), Kernels("torch_kernels.py")
    assert numpy_kernels.used_by("_masked_attention_bwd(g, q, k, v, km, 2, True)") == [
        "_softmax", "_masked_weights", "_masked_attention_bwd"]
    assert torch_kernels.used_by("_masked_attention(q, k, v, km, 2, True)") == ["_masked_attention"]


def test_embed_gradient_sums_rows_per_token():
    tokens = np.array([[0, 2, 2], [1, 0, 2]])
    g = RNG.standard_normal((2, 3, 4))
    table = torch.zeros(3, 4, dtype=torch.float64, requires_grad=True)
    (F.embedding(torch.from_numpy(tokens), table) * t(g)).sum().backward()
    close(K._embed_bwd(g, tokens, 3), table.grad)


def test_onehot_sum_to_put_last_add_opt():
    assert K._onehot(np.array([2, 0]), 3).tolist() == [[0, 0, 1], [1, 0, 0]]
    assert K._sum_to(np.ones((2, 3, 4)), (4,)).tolist() == [6.0] * 4
    out = K._put_last(np.ones((2, 4)), (2, 3, 4))
    assert out[:, -1].sum() == 8 and out[:, :-1].sum() == 0
    assert K._add_opt(None, 1) == 1 and K._add_opt(2, None) == 2 and K._add_opt(2, 3) == 5


def test_torch_kernels_match_plain_torch():
    from seqdsl.kernels import torch_kernels as TK

    x = torch.randn(2, 3, 6, dtype=torch.float64)
    want = torch.cat([torch.sigmoid(x[..., :2]), torch.tanh(x[..., 2:])], -1)
    assert torch.allclose(TK._sigtanh(x, 2), want, atol=1e-12)
    TK._CTX.update(dtype=torch.float64)
    close(TK._positions(7, 6), K._positions(7, 6), 1e-12)
    q = torch.randn(2, 4, 6, dtype=torch.float64)
    close(TK._attention(q, q, q, 2, True), K._attention(q.numpy(), q.numpy(), q.numpy(), 2, True), 1e-10)
    close(TK._layernorm(x, torch.ones(6, dtype=torch.float64), torch.zeros(6, dtype=torch.float64)),
          K._layernorm(x.numpy(), np.ones(6), np.zeros(6)), 1e-10)


def test_erf_matches_the_c_library():
    import math

    x = np.concatenate([np.linspace(-7, 7, 20001), np.linspace(-1.01, 1.01, 2001), [0.0, 1.0, -1.0, 8.0, -8.0,
                                                                                   1e-300, 40.0, -1e300, 1e300]])
    want = np.array([math.erf(v) for v in x])
    np.testing.assert_allclose(K._erf(x), want, rtol=0, atol=4e-16)
    assert K._erf(x[:100].astype(np.float32)).dtype == np.float32
    assert np.isnan(K._erf(np.array([np.nan]))).all()


def test_gelu_and_its_gradient_match_torch():
    x = np.concatenate([RNG.standard_normal(200) * 4, [0.0, -40.0, 40.0, -1e300, 1e300]])
    close(K._gelu(x), F.gelu(t(x)))
    g = RNG.standard_normal(x.shape)
    xt = t(x).requires_grad_(True)
    (F.gelu(xt) * t(g)).sum().backward()
    close(K._gelu_bwd(g, x), xt.grad)


def test_softplus_is_exact_where_torchs_switches_to_x():
    from seqdsl.kernels import torch_kernels as TK

    x = torch.tensor([-800.0, -30.0, -1.0, 0.0, 1.0, 19.0, 21.0, 30.0, 800.0], dtype=torch.float64)
    want = [np.logaddexp(v, 0.0) for v in x.tolist()]
    close(TK._softplus(x), np.array(want), 1e-13)
    xt = x.clone().requires_grad_(True)
    TK._softplus(xt).sum().backward()
    close(xt.grad, torch.sigmoid(x), 1e-15)
    assert F.softplus(x)[6].item() == 21.0 != TK._softplus(x)[6].item()  # torch's threshold, which seqdsl has not


def test_numbers_take_the_module_dtype():
    from seqdsl.kernels import torch_kernels as TK

    TK._CTX.update(dtype=torch.float32)
    try:
        assert TK._num(0.5).dtype == torch.float32
        p = torch.ones((), dtype=torch.float32, requires_grad=True)
        assert TK._num(p) is p
    finally:
        TK._CTX.update(dtype=torch.float64)
    assert K._num(2.0).dtype == np.dtype(K.DTYPE) and K._num(2.0).shape == ()


def _defined(code):
    return set(re.findall(r"^(?:def )?(_[A-Za-z]\w*)\b", code, re.M))


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_generated_module_holds_only_the_kernels_it_uses(backend):
    from seqdsl.driver import generate_source

    kernels = Kernels("numpy_kernels.py" if backend == "numpy" else "torch_kernels.py")
    _, _, lstm = generate_source(seqdsl.load(ROOT / "specs/lstm.seq"), backend, None, "LSTM", "float64", True)
    assert "_attention" not in _defined(lstm) and "_attention_bwd" not in _defined(lstm)
    _, _, tr = generate_source(seqdsl.load(ROOT / "specs/transformer.seq"), backend, None, None, "float64", True)
    assert "_attention" in _defined(tr)
    always = ("_CTX",) if backend == "torch" else ()
    for code in (lstm, tr):
        held = _defined(code) & kernels.names
        assert held == set(kernels.used_by(code, always))  # whatever is called is there
        for name in held - set(always):  # and whatever is there is called outside its own definition
            uses = len(re.findall(rf"(?<![\w.]){name}\b", code.replace(kernels.defs[name], "")))
            assert uses > 0, name


def test_kernel_modules_do_not_import_torch_when_read():
    import subprocess
    import sys

    code = ("import sys; from seqdsl.kernels import Kernels; Kernels('torch_kernels.py'); "
            "assert 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn_tanh"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_the_kernel_over_the_padded_batch_equals_it_by_stretch(kind, dtype):
    """`_run_padded` (padding computed, kept from anything real: zero input, an LSTM's gates
    saturated, final h read from the outputs) = `_run_by_length` (padding never computed): outputs
    at real positions, final states and every gradient, with NaN and inf in the padding. Final c of
    an LSTM is the kernel's own: it holds only if the forget gate is exactly 1 past the end."""
    torch = pytest.importorskip("torch")
    from seqdsl.kernels.torch_kernels import _run_by_length, _run_padded

    dt = getattr(torch, dtype)
    g = torch.Generator().manual_seed(0)
    B, T, I, H = 8, 20, 5, 7
    gates = {"lstm": 4, "gru": 3, "rnn_tanh": 1}[kind]
    lengths = torch.tensor([20, 3, 15, 1, 7, 15, 9, 2])
    x = torch.randn(B, T, I, dtype=dt, generator=g)
    pad = torch.arange(T)[None, :] >= lengths[:, None]
    x[pad] = float("nan")
    x[1, 10] = float("inf")
    x.requires_grad_(True)
    w = [torch.randn(gates * H, n, dtype=dt, generator=g, requires_grad=True) for n in (I, H)]
    w += [torch.randn(gates * H, dtype=dt, generator=g, requires_grad=True) for _ in range(2)]
    hx = [torch.randn(1, B, H, dtype=dt, generator=g, requires_grad=True) for _ in range(2 if kind == "lstm" else 1)]
    d_y = torch.randn(B, T, H, dtype=dt, generator=g)
    got = []
    for run in (_run_by_length, _run_padded):
        y, finals = run(kind, x, hx, tuple(w), lengths, True)
        y = y.masked_fill(pad[..., None], 0)  # (the callers zero the padding)
        loss = (y * d_y).sum() + sum((f * (i + 1)).sum() for i, f in enumerate(finals))
        grads = torch.autograd.grad(loss, [x, *hx, *w])
        got.append([y, *finals, *grads])
    tol = 1e-12 if dtype == "float64" else 2e-5
    for a, b in zip(*got):
        assert not torch.isnan(a).any() and not torch.isnan(b).any()
        assert float((a - b).abs().max().detach()) <= tol

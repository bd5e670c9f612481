"""Both backends on every spec: they agree with each other, with torch.nn, and with SDPA."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT, all_definitions, golden, run_cli

import seqdsl
from seqdsl.backends.codegen import COMMON, Unsupported
from seqdsl.errors import SpecError
from seqdsl.ops import Op

torch = pytest.importorskip("torch")
from seqdsl.interop import from_torch  # noqa: E402

DEFS = all_definitions()
IDS = [f"{p.stem}-{n}" for p, n in DEFS]


def _np(d):
    return {k: v.detach().cpu().numpy() for k, v in d.items()}


def _close(a, b, atol):
    assert a.shape == b.shape
    assert not np.isnan(a).any() and not np.isnan(b).any()
    np.testing.assert_allclose(a, b, rtol=0, atol=atol)


@pytest.mark.parametrize("path,name", DEFS, ids=IDS)
def test_backends_agree_float64(path, name):
    n = seqdsl.compile(path, backend="numpy", name=name, dtype="float64")
    t = seqdsl.compile(path, backend="torch", name=name, dtype="float64").eval()  # inference: no dropout
    n.init_params(3)
    t.init_params(3)
    for k in n.params:
        np.testing.assert_array_equal(n.params[k], t.params[k].detach().numpy())
    inputs = n.example_inputs(batch=2, steps=6, seed=1)
    on, fn = n(**inputs)
    ot, ft = t(**{k: torch.from_numpy(v) for k, v in inputs.items()})
    assert set(on) == set(ot) and set(fn) == set(ft)
    for k in on:
        _close(on[k], ot[k].detach().numpy(), 1e-10)
    for k in fn:
        _close(fn[k], ft[k].detach().numpy(), 1e-10)


@pytest.mark.parametrize("spec,cls", [("rnn", "RNN"), ("lstm", "LSTM"), ("gru", "GRU")])
@pytest.mark.parametrize("backend", ["numpy", "torch", "torch-loop"])
def test_standard_cells_match_torch_nn(spec, cls, backend):
    torch.manual_seed(0)
    ref = getattr(torch.nn, cls)(8, 16, batch_first=True)
    fused = backend != "torch-loop"
    backend = backend.split("-")[0]
    exe = seqdsl.compile(ROOT / "specs" / f"{spec}.seq", backend=backend, fused=fused)
    if backend == "torch":
        assert ("torch._VF." in exe.source) == fused
    from_torch(exe, ref)
    x = torch.randn(4, 9, 8)
    h0, c0 = torch.randn(1, 4, 16), torch.randn(1, 4, 16)
    state = {"h": h0[0], "c": c0[0]} if cls == "LSTM" else {"h": h0[0]}
    y, fin = ref(x, (h0, c0) if cls == "LSTM" else h0)
    fin = {"h": fin[0][0], "c": fin[1][0]} if cls == "LSTM" else {"h": fin[0]}
    if backend == "numpy":
        out, final = exe(x=x.numpy(), state={k: v.numpy() for k, v in state.items()})
    else:
        x.requires_grad_(True)
        out, final = exe(x=x, state=state)
        (g_ours,) = torch.autograd.grad(out["y"].square().sum(), x)
        x2 = x.detach().clone().requires_grad_(True)
        (g_ref,) = torch.autograd.grad(ref(x2, (h0, c0) if cls == "LSTM" else h0)[0].square().sum(), x2)
        _close(g_ours.numpy(), g_ref.numpy(), 5e-5)
        out, final = _np(out), _np(final)
    _close(out["y"], y.detach().numpy(), 5e-5)
    for k in fin:
        _close(final[k], fin[k].detach().numpy(), 5e-5)


def test_long_sequence_float64_matches_torch():
    torch.manual_seed(1)
    ref = torch.nn.LSTM(8, 16, batch_first=True).double()
    exe = seqdsl.compile(ROOT / "specs/lstm.seq", backend="numpy", dtype="float64")
    from_torch(exe, ref)
    x = torch.randn(2, 300, 8, dtype=torch.float64)
    _close(exe(x=x.numpy())[0]["y"], ref(x)[0].detach().numpy(), 1e-10)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_attention_matches_sdpa(backend):
    src = ("block A(D = 16, heads = 2, causal = true) {\n    in q: seq[D]\n    in k: seq[D]\n    in v: seq[D]\n"
           "    out y = attention(q, k, v, heads, causal)\n}\n")
    exe = seqdsl.compile(src, backend=backend, dtype="float64")
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((2, 5, 16)) for _ in range(3))
    conv = (lambda a: a) if backend == "numpy" else torch.from_numpy
    out = exe(q=conv(q), k=conv(k), v=conv(v))[0]["y"]
    out = out if backend == "numpy" else out.numpy()
    split = lambda a: torch.from_numpy(a).reshape(2, 5, 2, 8).transpose(1, 2)
    ref = torch.nn.functional.scaled_dot_product_attention(split(q), split(k), split(v), is_causal=True)
    _close(out, ref.transpose(1, 2).reshape(2, 5, 16).numpy(), 1e-10)


def test_torch_module_trains():
    torch.manual_seed(0)
    m = seqdsl.compile(ROOT / "specs/tasks.seq", backend="torch", name="Sentiment", sizes={"V": 20, "H": 16, "E": 8})
    words = torch.randint(0, 20, (16, 6))
    labels = (words[:, 0] < 10).long()
    opt = torch.optim.Adam(m.parameters(), lr=0.05)
    losses = []
    for _ in range(30):
        loss = torch.nn.functional.cross_entropy(m(words=words)[0]["label"], labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_state_dict_keys_are_spec_names(tmp_path):
    m = seqdsl.compile(ROOT / "specs/tasks.seq", backend="torch", name="Translate")
    keys = set(m.state_dict())
    assert {"enc.W_ii", "dec.b_ho", "word.W", "enc_embed.weight"} <= keys
    m.save(tmp_path / "w.safetensors")
    m2 = seqdsl.compile(ROOT / "specs/tasks.seq", backend="torch", name="Translate")
    m2.init_params(5)
    m2.load(tmp_path / "w.safetensors")
    for k, v in m.state_dict().items():
        assert torch.equal(v, m2.state_dict()[k])


def test_npz_roundtrip_and_mismatch(tmp_path):
    exe = seqdsl.compile(ROOT / "specs/gru.seq")
    exe.save(tmp_path / "w.npz")
    other = seqdsl.compile(ROOT / "specs/gru.seq")
    other.init_params(9)
    other.load(tmp_path / "w.npz")
    for k in exe.params:
        np.testing.assert_array_equal(exe.params[k], other.params[k])
    big = seqdsl.compile(ROOT / "specs/gru.seq", sizes={"H": 4})
    with pytest.raises(SpecError, match="parameter W_ir has shape"):
        big.load(tmp_path / "w.npz")
    lstm = seqdsl.compile(ROOT / "specs/lstm.seq")
    with pytest.raises(SpecError, match="parameters do not match the spec; missing W_hf, W_hg"):
        lstm.load(tmp_path / "w.npz")


def test_every_backend_covers_every_op():
    from seqdsl.backends.numpy import TABLE as NP
    from seqdsl.backends.torch import TABLE as TT
    from seqdsl.ops import ops_where

    structural = {Op.INPUT, Op.MEMORY, Op.PARAM, Op.CALL, Op.GET, Op.OUTPUT} | ops_where(compiled=False)
    assert ops_where(compiled=False) == {Op.DROPOUT}  # passes/dropout.py rewrites it for every module
    for table in (NP, TT):
        assert set(Op) - structural <= set(table), set(Op) - structural - set(table)
    assert set(COMMON) <= set(NP)


def test_unsupported_op_is_an_explicit_error():
    from dataclasses import replace

    from seqdsl.backends import numpy as npb
    from seqdsl.backends.codegen import Codegen
    from seqdsl.driver import plan

    em = replace(npb.EMITTER, table={k: v for k, v in npb.TABLE.items() if k != Op.TANH})
    program = seqdsl.load(ROOT / "specs/rnn.seq")
    with pytest.raises(Unsupported, match="the numpy backend cannot compile op 'tanh'") as info:
        Codegen(program, plan(program, "RNN", {}, em), em, "float32").module("rnn.seq")
    assert info.value.line == 8


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_generated_code_golden(backend):
    from seqdsl.driver import generate_source

    for spec in ("lstm", "peephole_lstm"):
        golden(f"code/{spec}.{backend}.py", generate_source(ROOT / f"specs/{spec}.seq", backend)[2])
    for spec, name in (("tasks", "Sentiment"), ("transformer", "SelfAttention")):  # a model, a block
        golden(f"code/{spec}.{name}.{backend}.py", generate_source(ROOT / f"specs/{spec}.seq", backend, None, name)[2])


def test_compiled_file_is_standalone(tmp_path, capsys):
    """`seqdsl compile` (in this process), then the file alone in a fresh interpreter."""
    out = tmp_path / "lstm_np.py"
    r = run_cli(capsys, "compile", "specs/lstm.seq", "--set", "H=4", "-o", out, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    code = ("import sys, numpy as np, runpy; m = runpy.run_path(sys.argv[1]); "
            "P = {k: np.full(s, 0.1, 'float32') for k, (s, _) in m['PARAMS'].items()}; "
            "o, f = m['forward'](P, {'x': np.ones((2, 3, 8), 'float32')}); "
            "assert o['y'].shape == (2, 3, 4) and 'seqdsl' not in sys.modules and 'torch' not in sys.modules")
    r = subprocess.run([sys.executable, "-c", code, str(out)], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr


def test_reversed_run_matches_flipping():
    exe = seqdsl.compile(ROOT / "specs/gru.seq", dtype="float64")
    x = exe.example_inputs(steps=5)["x"]
    ns = exe._ns
    fname = next(k for k in ns if k.startswith("cell_GRU"))
    fwd = ns[fname](exe.params, "", x[:, ::-1], {}, {}, False)
    rev = ns[fname](exe.params, "", x, {}, {}, True)
    _close(rev[0]["y"], fwd[0]["y"][:, ::-1], 1e-12)


def test_fused_kernel_choice():
    for spec, kernel in (("rnn", "rnn_tanh"), ("lstm", "lstm"), ("gru", "gru")):
        assert f"torch._VF.{kernel}(" in seqdsl.compile(ROOT / f"specs/{spec}.seq", backend="torch").source
    for spec in ("peephole_lstm", "delay2"):
        assert "torch._VF" not in seqdsl.compile(ROOT / f"specs/{spec}.seq", backend="torch").source
    relu = (ROOT / "specs/rnn.seq").read_text().replace("tanh(", "relu(")
    assert "torch._VF.rnn_relu(" in seqdsl.compile(relu, backend="torch").source


@pytest.mark.parametrize("reverse", [False, True])
def test_fused_and_loop_agree_in_models(reverse):
    src = (ROOT / "specs/lstm.seq").read_text() + (
        "model M(V = 20) {\n    in w: seq<int>\n"
        f"    r = LSTM(8, 16) over embed(w, V, 8){' reversed' if reverse else ''}\n"
        "    out y = linear(r.y, 3)\n    out hs = r.h\n    out final_h = r.h[last]\n}\n")
    a = seqdsl.compile(src, backend="torch", name="M", dtype="float64")
    b = seqdsl.compile(src, backend="torch", name="M", dtype="float64", fused=False)
    n = seqdsl.compile(src, backend="numpy", name="M", dtype="float64")
    w = torch.randint(0, 20, (3, 6))
    oa, fa = a(w=w)
    ob, fb = b(w=w)
    on, _ = n(w=w.numpy())
    for k in oa:
        _close(oa[k].detach().numpy(), ob[k].detach().numpy(), 1e-10)
        _close(oa[k].detach().numpy(), on[k], 1e-10)
    for k in fa:
        _close(fa[k].detach().numpy(), fb[k].detach().numpy(), 1e-10)


def test_unknown_compile_option():
    with pytest.raises(SpecError, match="unknown compile option"):
        seqdsl.compile(ROOT / "specs/rnn.seq", backend="torch", jit=True)


def test_cli_no_fused(tmp_path, capsys):
    out = tmp_path / "l.py"
    r = run_cli(capsys, "compile", "specs/lstm.seq", "--backend", "torch", "--no-fused", "-o", out, cwd=ROOT)
    assert r.returncode == 0 and "torch._VF" not in out.read_text()


def test_module_to_dtype_and_back():
    m = seqdsl.compile(ROOT / "specs/attention.seq", backend="torch", name="AttnTranslate")
    inputs = m.example_inputs(batch=2, steps=4)
    out32 = m(**inputs)[0]["word"]
    m.to(torch.float64)
    out64 = m(**inputs)[0]["word"]
    assert out64.dtype == torch.float64
    _close(out32.detach().double().numpy(), out64.detach().numpy(), 1e-4)
    lstm = seqdsl.compile(ROOT / "specs/lstm.seq", backend="torch").to(torch.float64)
    x = torch.randn(2, 3, 8, dtype=torch.float64)
    assert lstm(x=x)[0]["y"].dtype == torch.float64


def test_file_names_never_reach_generated_code_raw(tmp_path):
    evil = tmp_path / "x\nraise SystemExit(3)\n#.seq"
    evil.write_text((ROOT / "specs/rnn.seq").read_text())
    exe = seqdsl.compile(evil)
    assert "\nraise SystemExit(3)" not in exe.source
    assert exe(**exe.example_inputs())[0]["y"].shape == (2, 5, 16)


def test_example_tokens_fit_every_reader():
    src = ("model M(V = 50, K = 7) {\n    in w: seq<int>\n    a = embed(w, V, 4)\n    b = onehot(w, K)\n"
           "    out y = concat(a, b)\n}\n")
    exe = seqdsl.compile(src)
    for seed in range(5):
        w = exe.example_inputs(batch=4, steps=20, seed=seed)["w"]
        assert w.max() < 7
        exe(w=w)


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_self_attention_matches_multihead_attention(backend, causal):
    """specs/transformer.seq's SelfAttention has nn.MultiheadAttention's weights, in its layout."""
    src = (ROOT / "specs/transformer.seq").read_text()
    text = src if causal else src.replace("causal = true", "causal = false")
    exe = seqdsl.compile(text, name="SelfAttention", backend=backend, sizes={"D": 16}, dtype="float64")
    torch.manual_seed(0)
    mha = torch.nn.MultiheadAttention(16, 4, batch_first=True).double()
    sd = mha.state_dict()
    weights = {"q_k_v_linear.W": sd["in_proj_weight"], "q_k_v_linear.b": sd["in_proj_bias"],
               "y.W": sd["out_proj.weight"], "y.b": sd["out_proj.bias"]}
    if backend == "numpy":
        exe.params = {k: v.numpy().copy() for k, v in weights.items()}
    else:
        exe.load_state_dict(weights)
    x = torch.randn(2, 7, 16, dtype=torch.float64)
    mask = torch.triu(torch.ones(7, 7, dtype=torch.bool), 1) if causal else None
    ref = mha(x, x, x, attn_mask=mask, need_weights=False)[0].detach().numpy()
    if backend == "numpy":
        got = exe(x=x.numpy())[0]["y"]
    else:
        got = exe(x=x)[0]["y"].detach().numpy()
    _close(got, ref, 1e-10)


def test_generated_lines_name_their_spec_line():
    """Each spec line's code starts with `# file:line: source`; odd characters in the spec's
    comments are escaped, so they can never end the comment or break the module."""
    text = ("cell C(I = 2, H = 3) {\n    in x: [I]\n    state h: [H]\n    param W: [H, I]\n"
            "    h = tanh(W @ x + h[t-1])   # \\ ''' \"\"\" \u00e9\u2028 \\\n    out y = h\n}\n")
    from seqdsl.driver import generate_source

    for backend in ("numpy", "torch"):
        code = generate_source(text, backend, None, "C", "float64", False)[2]
        notes = [line.strip() for line in code.splitlines() if line.strip().startswith("# <string>:5:")]
        assert notes and all(n.isascii() and n.isprintable() for n in notes), notes
        assert "h = tanh(W @ x + h[t-1])" in notes[0] and "\\xe9" in notes[0] and "\\u2028" in notes[0]
        compile(code, "<test>", "exec")
    exe = seqdsl.compile(text, name="C", dtype="float64")
    exe.init_params(0)
    assert exe(x=np.ones((1, 2, 2)))[0]["y"].shape == (1, 2, 3)

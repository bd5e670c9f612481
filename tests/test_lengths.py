"""Variable lengths on every bundled definition (tests/lengths_check.py: a padded batch with
`lengths=` against each sequence alone, outputs, final states and gradients, NumPy and torch fused
and not), the checks on `lengths=` itself, and lengths that change nothing."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import ROOT, all_definitions
from lengths_check import check_lengths, close

import seqdsl
from seqdsl.backends.validate import InputError, UnknownName

DEFS = all_definitions()


@pytest.mark.parametrize("path,name", DEFS, ids=[f"{p.stem}.{n}" for p, n in DEFS])
def test_padded_batch_matches_each_sequence_alone(path, name):
    pytest.importorskip("torch")
    check_lengths(path, name)


def test_lengths_are_checked():
    exe = seqdsl.compile(ROOT / "specs/rnn.seq", dtype="float64")
    x = exe.example_inputs(batch=2, steps=4)["x"]
    for bad, message in [({"y": [1, 2]}, "RNN: lengths for 'y', which is not a sequence input"),
                         ({"x": [1.0, 2.0]}, r"lengths\['x'\] has dtype float64; expected whole numbers"),
                         ({"x": [1, 2, 3]}, r"lengths\['x'\] has shape \(3,\); expected \(2,\)"),
                         ({"x": [0, 2]}, r"lengths\['x'\]\[0\] is 0; expected 1 <= length <= 4, the steps of 'x'"),
                         ({"x": [1, 5]}, r"lengths\['x'\]\[1\] is 5; expected 1 <= length <= 4"),
                         ([1, 2], "RNN: lengths must be a dict")]:
        with pytest.raises((InputError, UnknownName), match=message):
            exe(x=x, lengths=bad)


def test_full_lengths_give_the_unpadded_result():
    exe = seqdsl.compile(ROOT / "specs/lstm.seq", dtype="float64")
    x = exe.example_inputs(batch=2, steps=5)["x"]
    outs, final = exe(x=x)
    outs_l, final_l = exe(x=x, lengths={"x": np.array([5, 5])})
    close("y", outs_l["y"], outs["y"])
    close("h", final_l["h"], final["h"])
    assert exe.variants.namespace(True, False)["MASKS"] == {"_mask": ("steps", "x")}
    assert seqdsl.compile(ROOT / "specs/lstm.seq")._ns["MASKS"] == {}  # the plain module takes none


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_full_lengths_run_the_plain_module(backend):
    """Lengths that are every sample's whole sequence are no lengths: the plain module runs (the
    fused kernel, no masks), and the loss is the same."""
    if backend == "torch":
        pytest.importorskip("torch")
    exe = seqdsl.compile(ROOT / "specs/tasks.seq", name="Translate", backend=backend, dtype="float64",
                         sizes={"Vs": 7, "Vt": 6, "E": 3, "H": 4})
    rng = np.random.default_rng(0)
    src, word = rng.integers(4, 7, (3, 5)), rng.integers(4, 6, (3, 4))
    if backend == "torch":
        import torch
        src, word = torch.as_tensor(src), torch.as_tensor(word)
    full = {"src": np.array([5, 5, 5]), "word": np.array([4, 4, 4])}
    value = lambda v: float(v.detach()) if hasattr(v, "detach") else float(v)  # noqa: E731
    plain = value(exe.loss(src=src, word=word))
    assert value(exe.loss(src=src, word=word, lengths=full)) == plain
    assert list(exe.variants._ns) == []  # no variant was made: the plain module ran
    short = value(exe.loss(src=src, word=word, lengths={**full, "word": np.array([4, 2, 4])}))
    assert short != plain and list(exe.variants._ns) == [(True, False, None, ())]


def test_executables_with_lengths_copy_and_pickle():
    import copy
    import pickle

    exe = seqdsl.compile(ROOT / "specs/gru.seq", dtype="float64")
    x = exe.example_inputs(batch=2, steps=5)["x"]
    want = exe(x=x, lengths={"x": [5, 2]})[0]["y"]
    for other in (copy.deepcopy(exe), pickle.loads(pickle.dumps(exe))):
        close("y", other(x=x, lengths={"x": [5, 2]})[0]["y"], want)


# ---- the standard cells against torch.nn on a PackedSequence ------------------------------

STANDARD = [("RNN", "rnn.seq"), ("LSTM", "lstm.seq"), ("GRU", "gru.seq")]


def _nn_packed(ref, x, lens, d_y, d_h):
    """torch.nn on the packed batch: padded outputs, final h (and c), and the weights' gradients."""
    import torch

    packed = torch.nn.utils.rnn.pack_padded_sequence(x, torch.as_tensor(lens), batch_first=True,
                                                     enforce_sorted=False)
    y, hx = ref(packed)
    y, _ = torch.nn.utils.rnn.pad_packed_sequence(y, batch_first=True, total_length=x.shape[1])
    h = hx[0] if isinstance(hx, tuple) else hx
    ref.zero_grad()
    ((y * d_y).sum() + (h * d_h).sum()).backward()
    return y.detach().numpy(), h.detach().numpy(), {k: p.grad.numpy() for k, p in ref.named_parameters()}


@pytest.mark.parametrize("kind,spec", STANDARD)
def test_standard_cells_match_torch_nn_on_a_packed_batch(kind, spec):
    """A cell executable with lengths = nn.RNN/LSTM/GRU on pack_padded_sequence: outputs, final
    h, and the weights' gradients (NumPy BPTT; torch fused and loop autograd)."""
    torch = pytest.importorskip("torch")
    from seqdsl.interop import weights_of

    torch.manual_seed(0)
    I, H, T = 3, 4, 6
    ref = getattr(torch.nn, kind)(I, H, batch_first=True).double()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, T, I))
    lens = np.array([6, 2, 5, 1])
    d_y, d_h = rng.normal(size=(4, T, H)), rng.normal(size=(1, 4, H))
    y_ref, h_ref, g_ref = _nn_packed(ref, torch.from_numpy(x), lens, torch.from_numpy(d_y), torch.from_numpy(d_h))
    want_grads = weights_of(kind, type("G", (), {"state_dict": lambda self: {k: torch.from_numpy(v) for k, v in
                                                                                g_ref.items()},
                                                 "hidden_size": H})())
    exe = seqdsl.compile(ROOT / f"specs/{spec}", sizes={"I": I, "H": H}, dtype="float64")
    seqdsl.interop.from_torch(exe, ref)
    outs, final, grads = exe.value_and_grad({"x": x}, {"y": d_y}, {"h": d_h[0]}, lengths={"x": lens})
    close("numpy y", outs["y"], y_ref)
    close("numpy h", final["h"], h_ref[0])
    for k, v in want_grads.items():
        close(f"numpy gradient {k}", grads["params"][k], v)
    for fused in (True, False):
        mod = seqdsl.compile(ROOT / f"specs/{spec}", backend="torch", sizes={"I": I, "H": H}, dtype="float64",
                             fused=fused)
        seqdsl.interop.from_torch(mod, ref)
        outs, final = mod(x=torch.from_numpy(x), lengths={"x": torch.as_tensor(lens)})
        ((outs["y"] * torch.from_numpy(d_y)).sum() + (final["h"] * torch.from_numpy(d_h[0])).sum()).backward()
        close(f"torch fused={fused} y", outs["y"].detach().numpy(), y_ref)
        close(f"torch fused={fused} h", final["h"].detach().numpy(), h_ref[0])
        for k, v in want_grads.items():
            close(f"torch fused={fused} gradient {k}", mod.params[k].grad.numpy(), v)


@pytest.mark.parametrize("kind,spec", STANDARD)
@pytest.mark.parametrize("bidirectional", [False, True])
def test_many_distinct_lengths_keep_the_fused_kernel(kind, spec, bidirectional):
    """More distinct lengths than the fused kernel runs per stretch on oneDNN (7 > MAX_STRETCHES):
    the kernel over the padded batch (`_run_padded`: an LSTM's gates saturated at padding, final
    h read from each sample's last output), with and without gradients; equal to torch.nn on the
    packed batch, forward and backward, and oneDNN left switched on."""
    torch = pytest.importorskip("torch")
    from seqdsl.backends.torch_fused import MAX_STRETCHES
    from seqdsl.interop import weights_of

    torch.manual_seed(2)
    I, H, T = 3, 4, 8
    lens = np.array([7, 2, 5, 1, 8, 3, 4])
    assert len(set(lens.tolist())) > MAX_STRETCHES
    ref = getattr(torch.nn, kind)(I, H, batch_first=True, bidirectional=bidirectional).double()
    rng = np.random.default_rng(2)
    x = torch.from_numpy(rng.normal(size=(len(lens), T, I)))
    d_y = torch.from_numpy(rng.normal(size=(len(lens), T, H * (1 + bidirectional))))
    y_ref, _, g_ref = _nn_packed(ref, x, lens, d_y, torch.zeros(1 + bidirectional, len(lens), H))
    holder = type("G", (), {"state_dict": lambda self: {k: torch.from_numpy(v) for k, v in g_ref.items()},
                            "hidden_size": H})()
    if bidirectional:
        text = (f'use "{spec}"\nmodel Bi(I = {I}, H = {H}) {{\n    in x: seq[I]\n'
                f"    bi = {kind}(I, H) over x bidirectional\n    out y = bi.y\n}}\n")
        mod = seqdsl.compile(text, backend="torch", dtype="float64")
        pairs = [("bi.fwd.", "_l0"), ("bi.bwd.", "_l0_reverse")]
    else:
        mod = seqdsl.compile(ROOT / f"specs/{spec}", backend="torch", sizes={"I": I, "H": H}, dtype="float64")
        pairs = [("", "_l0")]
    weights = {pre + k: v for pre, suffix in pairs for k, v in weights_of(kind, ref, suffix).items()}
    want_grads = {pre + k: v for pre, suffix in pairs for k, v in weights_of(kind, holder, suffix).items()}
    mod.load_state_dict({k: torch.as_tensor(np.asarray(v)) for k, v in weights.items()})
    with torch.no_grad():
        close("y, no gradients", mod(x=x, lengths={"x": lens})[0]["y"].numpy(), y_ref)
    outs, _final = mod(x=x, lengths={"x": lens})
    (outs["y"] * d_y).sum().backward()
    close("y, with gradients", outs["y"].detach().numpy(), y_ref)
    for k, v in want_grads.items():
        close(f"gradient {k}", mod.params[k].grad.numpy(), v)
    assert "_run_padded(" in mod.variants.sources[(True, False, None, ())][0]
    assert torch.backends.mkldnn.enabled


@pytest.mark.parametrize("kind,spec", STANDARD)
@pytest.mark.parametrize("backend,fused", [("numpy", False), ("torch", False), ("torch", True)])
def test_what_padding_holds_changes_nothing(kind, spec, backend, fused):
    """NaN and inf past a sample's end: the same outputs, final states and gradients as zeros there,
    on every path (the masked loops, NumPy's rows, torch's loop on rows, the fused kernel by stretch
    (3 lengths, with gradients) and over the padded batch (7 lengths, or no gradients)). Before the
    inputs were zeroed at padding, the masked loops' gradients were NaN (0 * NaN in a derivative)."""
    pytest.importorskip("torch")
    exe = seqdsl.compile(ROOT / f"specs/{spec}", backend=backend, sizes={"I": 3, "H": 4}, dtype="float64",
                         **({"fused": fused} if backend == "torch" else {}))
    rng = np.random.default_rng(4)
    for lens in (np.array([5, 2, 3, 2]), np.array([7, 2, 5, 1, 8, 3, 4])):
        x = rng.normal(size=(len(lens), 8, 3))
        dirty = x.copy()
        for b, n in enumerate(lens):
            dirty[b, n:] = np.nan if b % 2 else np.inf
            x[b, n:] = 0.0
        d_y = rng.normal(size=(len(lens), 8, 4))
        got = [_run_with_grads(exe, backend, a, lens, d_y) for a in (x, dirty)]
        for k in got[0]:
            close(f"{k} (lengths {lens.tolist()})", got[1][k], got[0][k])


def _run_with_grads(exe, backend, x, lens, d_y) -> dict:
    """Outputs and final h without gradients, and with them, and the parameters' gradients."""
    if backend == "numpy":
        outs, final = exe(x=x, lengths={"x": lens})
        _, _, grads = exe.value_and_grad({"x": x}, {"y": d_y}, lengths={"x": lens})
        return {"y": outs["y"], "h": final["h"], **{f"d{k}": v for k, v in grads["params"].items()}}
    import torch

    with torch.no_grad():
        outs, final = exe(x=torch.from_numpy(x), lengths={"x": lens})
    exe.zero_grad()
    outs_g, final_g = exe(x=torch.from_numpy(x), lengths={"x": lens})
    ((outs_g["y"] * torch.from_numpy(d_y)).sum() + final_g["h"].sum()).backward()
    grads = {f"d{k}": p.grad.numpy() for k, p in exe.params.items()}
    return {"y": outs["y"].numpy(), "h": final["h"].numpy(), "y with autograd": outs_g["y"].detach().numpy(),
            "h with autograd": final_g["h"].detach().numpy(), **grads}


@pytest.mark.parametrize("kind,spec", STANDARD)
def test_bidirectional_runs_match_torch_nn_bidirectional_on_a_packed_batch(kind, spec):
    torch = pytest.importorskip("torch")
    from seqdsl.interop import weights_of

    torch.manual_seed(1)
    I, H, T = 3, 4, 6
    ref = getattr(torch.nn, kind)(I, H, batch_first=True, bidirectional=True).double()
    text = (f'use "{spec}"\nmodel Bi(I = {I}, H = {H}) {{\n    in x: seq[I]\n'
            f"    bi = {kind}(I, H) over x bidirectional\n    out y = bi.y\n}}\n")
    rng = np.random.default_rng(1)
    x = rng.normal(size=(4, T, I))
    lens = np.array([3, 6, 1, 4])
    d_y = rng.normal(size=(4, T, 2 * H))
    y_ref, _, g_ref = _nn_packed(ref, torch.from_numpy(x), lens, torch.from_numpy(d_y), torch.zeros(2, 4, H))
    holder = type("G", (), {"state_dict": lambda self: {k: torch.from_numpy(v) for k, v in g_ref.items()},
                            "hidden_size": H})()
    want_grads = {**{f"bi.fwd.{k}": v for k, v in weights_of(kind, holder).items()},
                  **{f"bi.bwd.{k}": v for k, v in weights_of(kind, holder, "_l0_reverse").items()}}
    weights = {**{f"bi.fwd.{k}": v for k, v in weights_of(kind, ref).items()},
               **{f"bi.bwd.{k}": v for k, v in weights_of(kind, ref, "_l0_reverse").items()}}
    for backend, fused in (("numpy", True), ("torch", True), ("torch", False)):
        exe = seqdsl.compile(text, backend=backend, dtype="float64", fused=fused)  # `use` finds the bundled cell
        if backend == "numpy":
            exe.params = dict(weights)
            outs, _, grads = exe.value_and_grad({"x": x}, {"y": d_y}, lengths={"x": lens})
            close("numpy y", outs["y"], y_ref)
            for k, v in want_grads.items():
                close(f"numpy gradient {k}", grads["params"][k], v)
            continue
        with torch.no_grad():
            for k, v in weights.items():
                exe.params[k].copy_(torch.from_numpy(v))
        outs, _ = exe(x=torch.from_numpy(x), lengths={"x": lens})
        (outs["y"] * torch.from_numpy(d_y)).sum().backward()
        close(f"torch fused={fused} y", outs["y"].detach().numpy(), y_ref)
        for k, v in want_grads.items():
            close(f"torch fused={fused} gradient {k}", exe.params[k].grad.numpy(), v)


def test_a_cells_inputs_share_their_lengths():
    spec = ("cell Two(I = 2) {\n    in x: [I]\n    in mask: []\n    state h: [I] = zeros\n"
            "    h = tanh(h[t-1] + x * mask)\n    out y = h\n}\n")
    exe = seqdsl.compile(spec, dtype="float64")
    inputs = exe.example_inputs(batch=2, steps=4)
    a = exe(**inputs, lengths={"mask": [4, 2]})[0]["y"]
    close("y", exe(**inputs, lengths={"x": [4, 2], "mask": [4, 2]})[0]["y"], a)
    with pytest.raises(InputError, match=r"lengths\['mask'\] is \[4, 1\] but lengths\['x'\] is \[4, 2\]; a cell reads"):
        exe(**inputs, lengths={"x": [4, 2], "mask": [4, 1]})


# drawn by the fuzz: a layernorm of two features is always ±1, so a constant initialiser times it
# put min exactly on its tie, broken differently by the padded batch and the sample alone (the
# harness now jitters the parameters, as tests/differential.py does)
LAYERNORM_TIE = """\
cell Enc(I = 2, H = 3, K = 1) {
    in x: [2]
    state h: [3]
    h = sigmoid(h[t-1]) * h[t-1] + h[t-1]
    out y = h
}

cell Dec(I = 2, H = 3, K = 1) {
    in x: [2]
    state h: [3]
    param v2: [1]
    param W3: [1, 2] = 0.1
    param W5: [1, 2]
    param W9: [2, 2] ~ uniform(0.5)
    v1 = ((mean(h[t-1]) * relu(h[t-1])) + gelu(min((v2 @ (W3 @ x)), h[t-1])))
    v4 = (W5 @ x)
    v6 = v1
    v7 = x
    v8 = layernorm((x - mean(x)) + W9 @ x)
    h = (v1 + h[t-1])
    out y = h
}
model M(V = 2, E = 2, H = 3) {
    in src: seq[E]
    x = layernorm(src)
    enc = Enc(E, H) over x
    dec = Dec(E, H) over x
    out word = linear(dec.y, V)
}
"""


def test_fuzz_draw_layernorm_tie():
    pytest.importorskip("torch")
    check_lengths(LAYERNORM_TIE, "M", steps=1, seed=0)


def test_a_relu_rnn_with_lengths_never_computes_its_padding():
    """The fused relu RNN runs stretch by stretch whatever its lengths: past a sample's end nothing
    bounds its values, and the padded kernel's overflow there would make gradients NaN. Equal to
    nn.RNN(nonlinearity="relu") on the packed batch, with weights large enough to overflow."""
    torch = pytest.importorskip("torch")
    from seqdsl.interop import weights_of
    from seqdsl.kernels.torch_kernels import _run_padded

    text = (ROOT / "specs/rnn.seq").read_text(encoding="utf-8").replace("tanh(", "relu(")
    mod = seqdsl.compile(text, backend="torch", dtype="float64", sizes={"I": 3, "H": 4})
    source = mod.variants.namespace(True, False) and mod.variants.sources[(True, False, None, ())][0]
    assert "_run_by_length(" in source and "_run_padded(" not in source
    ref = torch.nn.RNN(3, 4, batch_first=True, nonlinearity="relu").double()
    with torch.no_grad():
        ref.weight_hh_l0.copy_(torch.eye(4) * 1e6)  # 8 real steps stay finite; 60 padded would overflow
    mod.load_state_dict({k: torch.as_tensor(np.asarray(v)) for k, v in weights_of("RNN", ref, "_l0").items()})
    lens = np.array([8, 2, 5, 1, 8, 3, 4])
    x = torch.from_numpy(np.abs(np.random.default_rng(5).normal(size=(len(lens), 60, 3))))
    d_y = torch.from_numpy(np.random.default_rng(6).normal(size=(len(lens), 60, 4)))
    y_ref, _, g_ref = _nn_packed(ref, x, lens, d_y, torch.zeros(1, len(lens), 4))
    holder = type("G", (), {"state_dict": lambda self: {k: torch.from_numpy(v) for k, v in g_ref.items()},
                            "hidden_size": 4})()
    outs, _ = mod(x=x, lengths={"x": lens})
    (outs["y"] * d_y).sum().backward()
    close("y", outs["y"].detach().numpy(), y_ref)
    for k, v in weights_of("RNN", holder, "_l0").items():
        close(f"gradient {k}", mod.params[k].grad.numpy(), v)
    with pytest.raises(ValueError, match="rnn_relu is not bounded past the end of a sample"):
        _run_padded("rnn_relu", x, [torch.zeros(1, len(lens), 4)], (), torch.as_tensor(lens), False)


def test_nan_in_an_observed_values_padding_changes_no_loss_and_no_gradient():
    """The loss left padded positions out by multiplying by 0, and 0 * NaN is NaN: an observed
    sequence with NaN past each sample's end (read back as `y[t-1]` too) made the loss and NumPy's
    gradients NaN. Both backends, against the same call with zeros there."""
    torch = pytest.importorskip("torch")
    text = ('use "gru.seq"\nmodel Reg(D = 2, H = 4) {\n    in x: seq[3]\n'
            "    r = GRU(3 + D, H) over concat(x, y[t-1])\n    out y: [D] ~ normal(linear(r.y, D), 1.0)\n}\n")
    exe = seqdsl.compile(text, name="Reg", dtype="float64")
    mod = seqdsl.compile(text, name="Reg", backend="torch", dtype="float64")
    mod.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in exe.params.items()})
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(3, 5, 3)), rng.normal(size=(3, 5, 2))
    lengths = {"x": [5, 2, 3], "y": [5, 2, 3]}  # y's steps follow x's: the same lengths are accepted
    dirty = y.copy()
    for b, n in enumerate(lengths["x"]):
        dirty[b, n:] = np.nan
    got = []
    for obs in (y * (np.arange(5)[None, :, None] < np.array(lengths["x"])[:, None, None]), dirty):
        loss, _, grads = exe.loss_and_grad(x=x, y=obs, lengths=lengths)
        mod.zero_grad()
        tl = mod.loss(x=torch.from_numpy(x), y=torch.from_numpy(obs), lengths=lengths)
        tl.backward()
        got.append({"loss": loss, "torch loss": float(tl.detach()), **{f"d{k}": v for k, v in grads["params"].items()},
                    **{f"torch d{k}": p.grad.numpy().copy() for k, p in mod.params.items()}})
    for k in got[0]:
        close(k, got[1][k], got[0][k])


def test_an_output_over_a_memory_is_zero_at_the_memorys_padding():
    """Attention weights are zero there by their masked softmax; an output like tanh(m) or
    sigmoid(m @ q) was not, and its gradient reached the memory's padding."""
    text = ("cell M(I = 3, H = 4) {\n    in x: [I]\n    memory m: seq[H]\n    state h: [H]\n"
            "    param W: [H, I]\n    param U: [H, H]\n    param q: [H]\n    a = softmax(m @ h[t-1])\n"
            "    h = tanh(W @ x + U @ h[t-1] + sum(a * m))\n    out y = h\n    out tm = tanh(m)\n"
            "    out s = sigmoid(m @ q)\n}\n")
    pytest.importorskip("torch")
    check_lengths(text, "M")

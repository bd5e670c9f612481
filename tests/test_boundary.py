"""The executable boundary (both backends), weights files, internal errors, copies and reprs.

Every bad argument is ONE error raised before generated code (or a torch._VF kernel) runs,
with the same message on every backend and path; saves never destroy the file they replace.
"""

from __future__ import annotations

import copy
import os
import pickle
import sys

import numpy as np
import pytest
from conftest import ROOT, run_cli

import seqdsl
from seqdsl.backends.validate import InputError, UnknownName
from seqdsl.errors import InternalError, SpecError

torch = pytest.importorskip("torch")

PATHS = ["numpy", "torch", "torch-loop"]  # torch-loop: the generated loop instead of the fused kernel


def _compile(spec, path="numpy", **kw):
    backend = path.split("-")[0]
    src = ROOT / f"specs/{spec}.seq" if "\n" not in spec else spec
    return seqdsl.compile(src, backend=backend, fused=path != "torch-loop", **kw)


def _conv(exe, a):
    """A numpy array as the executable's backend takes it."""
    if exe.backend == "numpy":
        return a
    t = torch.from_numpy(np.asarray(a))
    return t if t.dtype in (torch.int64, torch.int32) else t.to(exe.dtype)


def _refuse(exe, message, state=None, **inputs):
    """The call fails before generated code runs, with exactly `message`."""
    def boom(*a, **k):
        raise AssertionError("generated code ran")

    saved = exe._ns["forward"]
    exe._ns["forward"] = boom
    try:
        with pytest.raises(ValueError) as info:
            exe(**inputs, state=state)
    finally:
        exe._ns["forward"] = saved
    assert isinstance(info.value, InputError)
    assert str(info.value) == message
    return info.value


# ---- inputs -----------------------------------------------------------------------------
@pytest.mark.parametrize("path", PATHS)
def test_feature_size_and_rank(path):
    exe = _compile("lstm", path)
    _refuse(exe, "LSTM: input 'x' has shape (2, 5, 7); expected (B, T, 8) = (batch, steps, I)",
            x=_conv(exe, np.zeros((2, 5, 7), np.float32)))
    _refuse(exe, "LSTM: input 'x' has shape (5, 8); expected (B, T, 8) = (batch, steps, I)",
            x=_conv(exe, np.zeros((5, 8), np.float32)))
    _refuse(exe, "LSTM: input 'x' has shape (2, 5, 8, 1); expected (B, T, 8) = (batch, steps, I)",
            x=_conv(exe, np.zeros((2, 5, 8, 1), np.float32)))


@pytest.mark.parametrize("path", PATHS)
def test_zero_length_sequences_and_empty_batches(path):
    exe = _compile("lstm", path)
    _refuse(exe, "LSTM: input 'x' has shape (2, 0, 8); expected (B, T, 8) = (batch, steps, I) with T >= 1 "
                 "(a sequence needs at least one step)", x=_conv(exe, np.zeros((2, 0, 8), np.float32)))
    _refuse(exe, "LSTM: input 'x' has shape (0, 3, 8); expected (B, T, 8) = (batch, steps, I) with at least "
                 "one sample in the batch", x=_conv(exe, np.zeros((0, 3, 8), np.float32)))


@pytest.mark.parametrize("path", PATHS)
def test_zero_length_in_models(path):
    exe = _compile("tasks", path, name="Sentiment")
    _refuse(exe, "Sentiment: input 'words' has shape (3, 0); expected (B, T) = (batch, steps) with T >= 1 "
                 "(a sequence needs at least one step)", words=_conv(exe, np.zeros((3, 0), np.int64)))


@pytest.mark.parametrize("path", ["numpy", "torch"])
def test_input_names(path):
    exe = _compile("lstm", path)
    x = exe.example_inputs()["x"]
    with pytest.raises(UnknownName, match=r"^LSTM: unknown input 'z'; its inputs are: x$") as info:
        exe(x=x, z=x)
    assert isinstance(info.value, ValueError) and isinstance(info.value, TypeError)
    with pytest.raises(ValueError, match=r"^LSTM: missing input 'x'; its inputs are: x$"):
        exe()
    with pytest.raises(ValueError, match=r"unknown input 'xs' \(did you mean 'x'\?\)"):
        exe(xs=x)


def test_numpy_dtypes():
    exe = _compile("lstm")
    _refuse(exe, "LSTM: input 'x' has dtype int64; expected real floating-point values (they are converted to "
                 "float32)", x=np.zeros((2, 3, 8), np.int64))
    _refuse(exe, "LSTM: input 'x' has dtype complex128; expected real floating-point values (they are converted "
                 "to float32)", x=np.zeros((2, 3, 8), complex))
    with pytest.raises(InputError, match="input 'x' cannot be read as an array"):
        exe(x=[[1.0, 2.0], [3.0]])
    out, _ = exe(x=np.zeros((2, 3, 8), np.float64))  # other float widths are converted
    assert out["y"].dtype == np.float32
    m = _compile("tasks", name="Sentiment")
    _refuse(m, "Sentiment: input 'words' has dtype float64; expected integer token ids", words=np.zeros((2, 3)))
    assert m(words=np.zeros((2, 3), np.uint8))[0]["label"].shape == (2, 2)


@pytest.mark.parametrize("fused", [True, False])
def test_torch_types_dtypes_and_devices(fused):
    exe = seqdsl.compile(ROOT / "specs/lstm.seq", backend="torch", fused=fused)
    x = np.zeros((2, 3, 8), np.float32)
    _refuse(exe, "LSTM: input 'x' is a numpy.ndarray; expected a torch.Tensor (wrap it with torch.from_numpy)", x=x)
    _refuse(exe, "LSTM: input 'x' is a list; expected a torch.Tensor", x=x.tolist())
    _refuse(exe, "LSTM: input 'x' has dtype torch.float64; expected torch.float32, the module's dtype (convert the "
                 "tensor with .to(torch.float32), or the module with .to(torch.float64))",
            x=torch.zeros(2, 3, 8, dtype=torch.float64))
    _refuse(exe, "LSTM: input 'x' has dtype torch.int64; expected torch.float32, the module's dtype (convert the "
                 "tensor with .to(torch.float32), or the module with .to(torch.int64))",
            x=torch.zeros(2, 3, 8, dtype=torch.int64))
    _refuse(exe, "LSTM: input 'x' is on device meta; expected cpu, the module's device",
            x=torch.zeros(2, 3, 8, device="meta"))
    m = seqdsl.compile(ROOT / "specs/tasks.seq", backend="torch", name="Sentiment", fused=fused)
    _refuse(m, "Sentiment: input 'words' has dtype torch.float32; expected integer token ids", words=torch.zeros(2, 3))
    _refuse(m, "Sentiment: input 'words' has dtype torch.bool; expected integer token ids",
            words=torch.zeros(2, 3, dtype=torch.bool))
    out, _ = m(words=torch.zeros(2, 3, dtype=torch.int32))  # any integer dtype; one_hot needs int64: converted
    assert out["label"].shape == (2, 2)


@pytest.mark.parametrize("path", PATHS)
def test_token_ids_in_range(path):
    exe = _compile("tasks", path, name="CharLM")  # onehot(char[t-1], 96)
    w = np.zeros((2, 4), np.int64)
    w[1, 2] = 96
    _refuse(exe, "CharLM: input 'char' holds token id 96 at index (1, 2); expected ids in [0, 96)",
            char=_conv(exe, w))
    w[1, 2] = -1  # would wrap around to the last row of an embedding
    _refuse(exe, "CharLM: input 'char' holds token id -1 at index (1, 2); expected ids in [0, 96)",
            char=_conv(exe, w))
    e = _compile("tasks", path, name="Sentiment")  # embed(words, 1000, E)
    _refuse(e, "Sentiment: input 'words' holds token id -3 at index (0, 0); expected ids in [0, 1000)",
            words=_conv(e, np.full((1, 2), -3)))


@pytest.mark.parametrize("path", ["numpy", "torch"])
def test_token_ids_read_through_a_block(path):
    """Ids that reach an embedding inside a block are checked against its vocabulary (not 1)."""
    src = ("block B(V = 10, E = 4) {\n    in w: seq<int>\n    out y = embed(w, V, E)\n}\n"
           "model M(V = 10) {\n    in w: seq<int>\n    out y = B(V, 4) over w\n}\n")
    exe = _compile(src, path, name="M")
    ins = exe.example_inputs(batch=4, steps=30)
    assert 0 < int(ins["w"].max()) < 10
    assert tuple(exe(w=_conv(exe, np.full((1, 3), 9)))[0]["y"].shape) == (1, 3, 4)
    _refuse(exe, "M: input 'w' holds token id 10 at index (0, 1); expected ids in [0, 10)",
            w=_conv(exe, np.array([[0, 10, 3]])))
    unused = _compile("model U(V = 10) {\n    in w: seq<int>\n    in x: seq[4]\n    out y = x\n}\n", path)
    unused(w=_conv(unused, np.full((1, 2), 123)), x=_conv(unused, np.zeros((1, 2, 4), np.float32)))


@pytest.mark.parametrize("path", PATHS)
def test_batch_sizes_agree(path):
    cap = _compile("tasks", path, name="Caption")
    ins = {k: np.asarray(v) for k, v in cap.example_inputs(batch=2, steps=3).items()}
    _refuse(cap, "Caption: input 'word' has batch size 2 (shape (2, 3)); expected 1, the batch size of input 'image'",
            image=_conv(cap, ins["image"][:1]), word=_conv(cap, ins["word"]))
    dec = _compile("attention", path, name="BahdanauDecoder")
    x = np.zeros((2, 3, 32), np.float32)
    _refuse(dec, "BahdanauDecoder: memory 'm' has batch size 3 (shape (3, 4, 64)); expected 2, the batch size of "
                 "input 'x'", x=_conv(dec, x), m=_conv(dec, np.zeros((3, 4, 64), np.float32)))
    _refuse(dec, "BahdanauDecoder: memory 'm' has shape (2, 0, 64); expected (B, S, 64) = (batch, memory steps, H) "
                 "with S >= 1 (a sequence needs at least one step)",
            x=_conv(dec, x), m=_conv(dec, np.zeros((2, 0, 64), np.float32)))
    _refuse(dec, "BahdanauDecoder: memory 'm' has shape (2, 4, 32); expected (B, S, 64) = (batch, memory steps, H)",
            x=_conv(dec, x), m=_conv(dec, np.zeros((2, 4, 32), np.float32)))
    _refuse(dec, "BahdanauDecoder: state 'h' has batch size 1 (shape (1, 64)); expected 2, the batch size of input 'x'",
            state={"h": _conv(dec, np.zeros((1, 64), np.float32))}, x=_conv(dec, x),
            m=_conv(dec, np.zeros((2, 4, 64), np.float32)))


@pytest.mark.parametrize("path", PATHS)
def test_initial_states(path):
    exe = _compile("lstm", path)
    x = _conv(exe, np.zeros((2, 3, 8), np.float32))
    with pytest.raises(UnknownName, match=r"^LSTM: unknown state 'q'; its states are: h, c$"):
        exe(x=x, state={"q": x})
    with pytest.raises(UnknownName, match=r"unknown state 'hh' \(did you mean 'h'\?\)"):
        exe(x=x, state={"hh": x})
    _refuse(exe, "LSTM: state 'h' has shape (2, 1, 16); expected (B, 16) = (batch, H)",
            state={"h": _conv(exe, np.zeros((2, 1, 16), np.float32))}, x=x)
    _refuse(exe, "LSTM: state 'c' has shape (16,); expected (B, 16) = (batch, H)",
            state={"c": _conv(exe, np.zeros(16, np.float32))}, x=x)
    _refuse(exe, "LSTM: state 'c' has batch size 1 (shape (1, 16)); expected 2, the batch size of input 'x'",
            state={"c": _conv(exe, np.zeros((1, 16), np.float32))}, x=x)
    with pytest.raises(InputError, match="state must be a dict of initial states by name, got a list"):
        exe(x=x, state=[np.zeros((2, 16))])
    out, final = exe(x=x, state={"h": None, "c": _conv(exe, np.ones((2, 16), np.float32))})  # None: not given
    assert tuple(final["c"].shape) == (2, 16)
    model = _compile("tasks", path, name="Translate")  # a model: its runs' states, by instance
    ins = model.example_inputs()
    with pytest.raises(UnknownName, match=r"^Translate: unknown state 'enc.x' \(did you mean 'enc.h'\?\); its states "
                                          r"are: enc.h, enc.c, word.last, dec.h, dec.c$"):
        model(**ins, state={"enc.x": _conv(model, np.zeros((2, 64), np.float32))})
    _refuse(model, "Translate: state 'dec.h' has shape (2, 3); expected (B, 64) = (batch, 64)",
            **ins, state={"dec.h": _conv(model, np.zeros((2, 3), np.float32))})
    _refuse(model, "Translate: state 'word.last' holds token id 400 at index (1,); expected ids in [0, 400)",
            **ins, state={"word.last": _conv(model, np.array([1, 400]))})
    _, final = model(**ins)
    assert sorted(final) == ["dec.c", "dec.h", "enc.c", "enc.h", "word.last"]


def test_torch_state_must_be_a_tensor_of_the_modules_dtype():
    exe = seqdsl.compile(ROOT / "specs/gru.seq", backend="torch")
    x = torch.zeros(2, 3, 8)
    _refuse(exe, "GRU: state 'h' is a numpy.ndarray; expected a torch.Tensor (wrap it with torch.from_numpy)",
            state={"h": np.zeros((2, 16), np.float32)}, x=x)
    _refuse(exe, "GRU: state 'h' has dtype torch.float64; expected torch.float32, the module's dtype (convert the "
                 "tensor with .to(torch.float32), or the module with .to(torch.float64))",
            state={"h": torch.zeros(2, 16, dtype=torch.float64)}, x=x)


def test_nan_inputs_are_allowed():
    exe = _compile("rnn")
    x = np.full((1, 2, 8), np.nan, np.float32)
    assert np.isnan(exe(x=x)[0]["y"]).all()


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_example_inputs_sizes(backend):
    exe = _compile("lstm", backend)
    for kw, shown in ((dict(batch=0), "batch=0"), (dict(steps=0), "steps=0"), (dict(steps=-2), "steps=-2"),
                      (dict(batch=1.5), "batch=1.5"), (dict(batch=True), "batch=True")):
        with pytest.raises(ValueError, match=rf"^LSTM: example_inputs\({shown}\): expected a whole number >= 1$"):
            exe.example_inputs(**kw)
    assert tuple(exe.example_inputs(batch=np.int64(1), steps=1)["x"].shape) == (1, 1, 8)


# ---- value_and_grad ------------------------------------------------------------------------
def test_cotangents_are_checked():
    exe = _compile("lstm", dtype="float64")
    ins = exe.example_inputs(batch=2, steps=3)
    with pytest.raises(TypeError, match=r"^LSTM has no output 'z'; its outputs are: y$") as info:
        exe.value_and_grad(ins, {"z": np.zeros((2, 3, 16))})
    assert isinstance(info.value, ValueError)
    with pytest.raises(ValueError, match=r"^LSTM: d_outputs\['y'\] has shape \(1, 3, 16\); expected \(2, 3, 16\), "
                                         r"the shape of output 'y'$"):
        exe.value_and_grad(ins, {"y": np.ones((1, 3, 16))})  # batch 1 is not broadcast
    with pytest.raises(ValueError, match=r"d_outputs\['y'\] has shape \(3, 16\); expected \(2, 3, 16\)"):
        exe.value_and_grad(ins, {"y": np.ones((3, 16))})
    with pytest.raises(TypeError, match=r"^LSTM has no final state 'q'; its final states are: h, c$"):
        exe.value_and_grad(ins, {"y": np.ones((2, 3, 16))}, {"q": np.ones((2, 16))})
    with pytest.raises(ValueError, match=r"^LSTM: d_final\['c'\] has shape \(16,\); expected \(2, 16\), the shape "
                                         r"of final state 'c'$"):
        exe.value_and_grad(ins, {"y": np.ones((2, 3, 16))}, {"c": np.ones(16)})
    with pytest.raises(ValueError, match=r"d_outputs\['y'\] has dtype complex128; expected real numbers"):
        exe.value_and_grad(ins, {"y": np.ones((2, 3, 16), complex)})
    with pytest.raises(ValueError, match="LSTM: input 'x' has shape"):
        exe.value_and_grad({"x": np.ones((2, 3, 5))}, {"y": np.ones((2, 3, 16))})
    _, _, grads = exe.value_and_grad(ins, {"y": np.ones((2, 3, 16))}, {"c": np.ones((2, 16))})
    assert grads["inputs"]["x"].shape == (2, 3, 8)


def test_errors_inside_generated_code_still_show_generated_lines():
    """What the boundary cannot know (a parameter replaced by a wrong shape) fails in generated
    code, and the traceback shows the generated lines."""
    import traceback

    exe = seqdsl.compile(ROOT / "specs/rnn.seq")
    exe.params = {**exe.params, "W_ih": np.zeros((16, 5), np.float32)}
    with pytest.raises(ValueError) as info:
        exe(x=np.zeros((2, 3, 8), dtype=np.float32))
    text = "".join(traceback.format_exception(info.value))
    assert "<seqdsl:rnn.seq:RNN:numpy>" in text and "_mm(x, W_ih)" in text


# ---- torch dtype ------------------------------------------------------------------------------
POSITIONS = "block P(D = 4) {\n    in x: seq[D]\n    out y = x + positions(D)\n}\n"


def test_module_without_parameters_has_the_compiled_dtype():
    m = seqdsl.compile(POSITIONS, backend="torch", dtype="float64")
    assert not list(m.parameters()) and m.dtype == torch.float64
    ins = m.example_inputs(batch=2, steps=3)
    assert ins["x"].dtype == torch.float64
    y = m(**ins)[0]["y"]
    assert y.dtype == torch.float64
    ref = seqdsl.compile(POSITIONS, dtype="float64")(x=ins["x"].numpy())[0]["y"]
    np.testing.assert_allclose(y.numpy(), ref, rtol=0, atol=1e-15)
    m.to(torch.float32)
    assert m.dtype == torch.float32 and m(x=torch.zeros(1, 2, 4))[0]["y"].dtype == torch.float32
    assert "_seqdsl_dtype" not in m.state_dict()


# ---- sizes of a loaded Program ----------------------------------------------------------------
def test_compile_a_program_at_the_sizes_it_was_loaded_with():
    program = seqdsl.load(ROOT / "specs/lstm.seq", sizes={"H": 32})
    exe = seqdsl.compile(program)
    assert exe.sizes == {"I": 8, "H": 32} and exe.params["W_hi"].shape == (32, 32)
    assert seqdsl.compile(program, sizes={"H": 4}).sizes == {"I": 8, "H": 4}
    assert seqdsl.compile(program, backend="torch").params["W_hi"].shape == (32, 32)
    src = "block B(H = 4, K = 2*H) {\n    in x: seq[H]\n    out y = linear(x, K)\n}\n"
    p = seqdsl.load(src, sizes={"H": 8})
    assert seqdsl.compile(p).sizes == {"H": 8, "K": 16}
    assert seqdsl.compile(p, sizes={"H": 3}).sizes == {"H": 3, "K": 6}  # K still follows H
    assert seqdsl.compile(seqdsl.load(src, sizes={"K": 5})).sizes == {"H": 4, "K": 5}
    tasks = seqdsl.load(ROOT / "specs/tasks.seq", sizes={"H": 16})
    assert seqdsl.compile(tasks, name="Translate").sizes["H"] == 16


# ---- internal errors ----------------------------------------------------------------------------
def test_internal_errors_are_not_spec_errors():
    from seqdsl.backends.codegen import Unsupported
    from seqdsl.ir import IRError

    assert issubclass(IRError, InternalError) and not issubclass(IRError, SpecError)
    assert issubclass(Unsupported, SpecError)


def _break_the_ir(g):
    g = g.copy()
    n = next(iter(g.nodes))
    del g.nodes[n]["type"]
    return g


def test_cli_reports_internal_errors(monkeypatch, capsys):
    from seqdsl.backends import numpy as npb
    from seqdsl.cli import main

    monkeypatch.delenv("SEQDSL_DEBUG", raising=False)
    monkeypatch.setattr(npb.EMITTER, "passes", (_break_the_ir,))
    assert main(["compile", "specs/rnn.seq"]) == 2
    err = capsys.readouterr().err
    assert "internal error: IR node" in err and "lacks attribute 'type'" in err
    assert "the IR was broken by the pass '_break_the_ir'" in err
    assert "please report this at" in err and "specs/rnn.seq" in err
    assert "Traceback" not in err
    monkeypatch.setenv("SEQDSL_DEBUG", "1")
    assert main(["compile", "specs/rnn.seq"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and "please report this at" in err


def test_optimize_names_the_pass_that_broke_the_ir():
    from seqdsl.errors import InternalError
    from seqdsl.passes import PIPELINE, optimize

    g = seqdsl.load(ROOT / "specs/rnn.seq").specialize("RNN")
    with pytest.raises(InternalError) as e:
        optimize(g, PIPELINE, (_break_the_ir,))
    assert e.value.pass_name == "_break_the_ir"


def test_cli_reports_unexpected_exceptions(monkeypatch, capsys):
    from seqdsl.backends import numpy as npb
    from seqdsl.cli import main

    def crash(g):
        raise KeyError("oops")

    monkeypatch.delenv("SEQDSL_DEBUG", raising=False)
    monkeypatch.setattr(npb.EMITTER, "passes", (crash,))
    assert main(["compile", "specs/gru.seq"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("specs/gru.seq: internal error: KeyError: 'oops'")
    assert "the IR was broken by the pass 'crash'" in err and "Traceback" not in err


def test_spec_errors_still_exit_1(tmp_path, capsys):
    from seqdsl.cli import main

    bad = tmp_path / "bad.seq"
    bad.write_text("cell C(H = 2) {\n    in x: [H]\n    out y = q\n}\n")
    assert main(["compile", str(bad)]) == 1
    err = capsys.readouterr().err
    assert f"{bad}:3:13: error: unknown name 'q'" in err and "internal error" not in err


# ---- copies and reprs ----------------------------------------------------------------------------
def test_deepcopy_and_pickle_numpy_executable():
    exe = _compile("lstm", dtype="float64")
    ins = exe.example_inputs()
    other = copy.deepcopy(exe)
    assert other._ns is not exe._ns and other.params["W_ii"] is not exe.params["W_ii"]
    np.testing.assert_array_equal(other(**ins)[0]["y"], exe(**ins)[0]["y"])
    other.params["W_ii"][:] = 0
    assert exe.params["W_ii"].any()
    assert not np.allclose(other(**ins)[0]["y"], exe(**ins)[0]["y"])
    again = pickle.loads(pickle.dumps(exe))
    np.testing.assert_array_equal(again(**ins)[0]["y"], exe(**ins)[0]["y"])
    assert again.value_and_grad(ins, {"y": np.ones((2, 5, 16))})[2]["params"]["W_ii"].shape == (16, 8)


def test_deepcopy_torch_module():
    m = seqdsl.compile(ROOT / "specs/tasks.seq", backend="torch", name="Translate", dtype="float64")
    ins = m.example_inputs(batch=2, steps=3)
    c = copy.deepcopy(m)
    assert c._ns is not m._ns and c.dtype == torch.float64
    torch.testing.assert_close(c(**ins)[0]["word"], m(**ins)[0]["word"])
    with torch.no_grad():
        c.params["enc.W_ii"].zero_()
    assert m.params["enc.W_ii"].abs().sum() > 0
    c(**ins)[0]["word"].sum().backward()
    assert c.params["word.W"].grad is not None and m.params["word.W"].grad is None
    p = copy.deepcopy(seqdsl.compile(POSITIONS, backend="torch", dtype="float64"))
    assert p(**p.example_inputs())[0]["y"].dtype == torch.float64
    again = pickle.loads(pickle.dumps(m))
    torch.testing.assert_close(again(**ins)[0]["word"], m(**ins)[0]["word"])


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_repr_names_spec_sizes_and_parameters(backend):
    exe = seqdsl.compile(ROOT / "specs/tasks.seq", backend=backend, name="Translate", sizes={"H": 8})
    text = repr(exe)
    assert "model Translate(Vs=300, Vt=400, E=32, H=8)" in text and f"backend={backend}" in text
    assert "enc.W_ii" in text and "(8, 32)" in text and "word.b" in text
    total = sum(int(np.prod(v.shape)) for v in exe.params.values()) if backend == "numpy" else \
        sum(p.numel() for p in exe.parameters())
    assert f"{total} parameters" in text
    if backend == "torch":
        assert str(exe) == text
    assert repr(seqdsl.compile(POSITIONS, backend=backend)).endswith("0 parameters)")


# ---- check lists every parameter --------------------------------------------------------------
@pytest.mark.parametrize("spec", ["tasks", "attention", "stacked", "transformer"])
def test_summary_lists_every_parameter(spec):
    from seqdsl.check import param_size, summary

    program = seqdsl.load(ROOT / f"specs/{spec}.seq")
    for name, d in program.definitions.items():
        s = summary(d.graph, program)
        assert d.summary() == s
        assert sum(param_size(dims) for _, dims in s["params"]) == d.param_count, name
        names = [n for n, _ in s["params"]]
        assert len(names) == len(set(names))
        exe = seqdsl.compile(program, name=name)
        assert set(names) == set(exe.param_specs), name
        for n, dims in s["params"]:
            assert tuple(int(x.value) for x in dims) == tuple(exe.param_specs[n][0])


def test_check_prints_every_parameter_with_counts(capsys):
    from seqdsl.cli import main

    assert main(["check", "specs/tasks.seq"]) == 0
    out = capsys.readouterr().out
    assert "    enc.W_ii [64, 32]" in out and "enc_embed.weight [1000, 32]  32000" in out
    translate = out[out.index("model Translate"):]
    rows = translate[translate.index("  params:\n"):translate.index("  parameters:")].splitlines()[1:]
    counts = [int(r.split()[-1]) for r in rows]
    total = int(translate.split("parameters: ")[1].split()[0])
    assert sum(counts) == total == seqdsl.load(ROOT / "specs/tasks.seq").definitions["Translate"].param_count


def test_check_symbolic_counts(tmp_path, capsys):
    from seqdsl.cli import main

    p = tmp_path / "c.seq"
    p.write_text("cell C(I, H) {\n    in x: [I]\n    state h: [H] = ones\n    param W: [H, I]\n"
                 "    param b: [H] = ones\n    h = tanh(W @ x + b + h[t-1])\n    out y = h\n}\n")
    assert main(["check", str(p)]) == 0
    out = capsys.readouterr().out
    assert "W [H, I]  H*I" in out and "parameters: symbolic" in out


# ---- saving and loading weights -------------------------------------------------------------------
def _leftovers(folder):
    return sorted(f.name for f in folder.iterdir() if f.name.endswith(".tmp"))


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_save_keeps_the_exact_name(tmp_path, backend):
    exe = _compile("gru", backend)
    exe.save(tmp_path / "weights")
    assert [f.name for f in tmp_path.iterdir()] == ["weights"]
    other = _compile("gru", backend)
    other.init_params(7)
    other.load(tmp_path / "weights")
    for k, v in exe.params.items():
        np.testing.assert_array_equal(np.asarray(v.detach() if backend == "torch" else v),
                                      np.asarray(other.params[k].detach() if backend == "torch" else other.params[k]))
    os.chmod(tmp_path / "weights", 0o640)
    exe.save(str(tmp_path / "weights"))  # replaced; its mode is kept
    assert (os.stat(tmp_path / "weights").st_mode & 0o777) == 0o640 and not _leftovers(tmp_path)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_save_refuses_what_it_must_not_replace(tmp_path, backend):
    exe = _compile("rnn", backend)
    with pytest.raises(SpecError, match="cannot write weights /dev/null: it is not a regular file"):
        exe.save("/dev/null")
    with pytest.raises(SpecError, match="it is a folder"):
        exe.save(tmp_path)
    with pytest.raises(SpecError, match=r"the folder .*nowhere does not exist"):
        exe.save(tmp_path / "nowhere" / "w")
    assert [f.name for f in tmp_path.iterdir()] == []


def test_failed_save_leaves_the_old_file(tmp_path, monkeypatch):
    exe = _compile("rnn")
    target = tmp_path / "w.npz"
    exe.save(target)
    before = target.read_bytes()

    def broken(f, **arrays):
        f.write(b"half a file")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", broken)
    exe.init_params(3)
    with pytest.raises(SpecError, match=r"cannot write weights .*w.npz: No space left on device"):
        exe.save(target)
    assert target.read_bytes() == before and not _leftovers(tmp_path)


def test_save_through_a_symlink_replaces_its_target(tmp_path):
    exe = _compile("rnn")
    real = tmp_path / "real.npz"
    real.write_bytes(b"old")
    link = tmp_path / "link.npz"
    link.symlink_to(real)
    exe.save(link)
    assert link.is_symlink() and real.read_bytes()[:2] == b"PK"


def _bad_npz_files(tmp_path):
    ok = tmp_path / "ok.npz"
    _compile("rnn").save(ok)
    data = ok.read_bytes()
    files = {"truncated.npz": data[: len(data) // 2], "empty.npz": b"", "text.npz": b"W_ih = 1\n"}
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    np.savez(tmp_path / "complex.npz", W_ih=np.ones((16, 8), complex))
    np.savez(tmp_path / "strings.npz", W_ih=np.array(["a", "b"]))
    np.savez(tmp_path / "objects.npz", W_ih=np.array([{}, None], dtype=object))
    np.save(tmp_path / "single.npy", np.ones(3))
    return {
        "truncated.npz": "the file is damaged or truncated",
        "empty.npz": "the file is empty",
        "text.npz": "not an .npz file",
        "complex.npz": "array 'W_ih' holds complex numbers, not real numbers",
        "strings.npz": "array 'W_ih' holds strings, not real numbers",
        "objects.npz": "array 'W_ih' holds Python objects, not numbers",
        "single.npy": r"it holds a single array \(.npy\)",
        "missing.npz": "no such file",
        ".": "it is a folder",
    }


def test_loading_bad_npz_files(tmp_path):
    exe = _compile("rnn")
    for name, why in _bad_npz_files(tmp_path).items():
        path = tmp_path / name
        with pytest.raises(SpecError, match=rf"cannot load weights from {tmp_path / name if name != '.' else tmp_path}"
                                            rf".*{why}") as info:
            exe.load(path)
        assert "pickled" not in str(info.value), name


def test_torch_weights(tmp_path, monkeypatch):
    from safetensors.torch import save_file

    def never(*a, **k):
        raise AssertionError("torch.load (pickle) must never be used")

    monkeypatch.setattr(torch, "load", never)
    m = seqdsl.compile(ROOT / "specs/rnn.seq", backend="torch")
    m.save(tmp_path / "ok.st")
    m.load(tmp_path / "ok.st")
    for name, content in (("empty.st", b""), ("text.st", b"hello\n"), ("trunc.st", None)):
        if content is None:
            m.save(tmp_path / "full.st")
            content = (tmp_path / "full.st").read_bytes()[:100]
        (tmp_path / name).write_bytes(content)
        with pytest.raises(SpecError, match=f"cannot load weights from {tmp_path / name}"):
            m.load(tmp_path / name)
    sd = {k: v.detach().to(torch.complex64) for k, v in m.state_dict().items()}
    save_file(sd, str(tmp_path / "complex.st"))
    with pytest.raises(SpecError, match="parameter .* holds complex numbers"):
        m.load(tmp_path / "complex.st")
    monkeypatch.setitem(sys.modules, "safetensors", None)
    monkeypatch.setitem(sys.modules, "safetensors.torch", None)
    with pytest.raises(SpecError, match="needs the safetensors package"):
        m.save(tmp_path / "w.st")
    with pytest.raises(SpecError, match="needs the safetensors package"):
        m.load(tmp_path / "full.st")


# ---- seqdsl compile -o -------------------------------------------------------------------------------
def _seqdsl(capsys, *args, cwd=ROOT):
    """`seqdsl ARGS` in this process (the hostile suite's c-proc-* cases run `python -m seqdsl`)."""
    return run_cli(capsys, *args, cwd=cwd)


def test_compile_output_is_replaced_whole_and_never_a_device(tmp_path, capsys):
    out = tmp_path / "m.py"
    out.write_text("old")
    r = _seqdsl(capsys, "compile", "specs/rnn.seq", "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert out.read_text().startswith("# Generated by seqdsl") and not _leftovers(tmp_path)
    r = _seqdsl(capsys, "compile", "specs/rnn.seq", "-o", "/dev/null")
    assert r.returncode == 1 and "cannot write the module /dev/null: it is not a regular file" in r.stderr
    r = _seqdsl(capsys, "compile", "specs/rnn.seq", "-o", str(tmp_path))
    assert r.returncode == 1 and "it is a folder" in r.stderr
    r = _seqdsl(capsys, "compile", "specs/rnn.seq", "-o", str(tmp_path / "new" / "m.py"))  # folders are made
    assert r.returncode == 0 and (tmp_path / "new" / "m.py").exists()


# ---- cells with several inputs ------------------------------------------------------------------
MASKED = """cell M(I = 2, H = 3) {
    in x: [I]
    in mask: []
    memory m: seq[H]
    state h: [H]
    param W: [H, I]
    h = mask * tanh(W @ x + sum(softmax(m @ h[t-1]) * m)) + (1 - mask) * h[t-1]
    out y = h
}
"""


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_a_cells_inputs_share_their_steps_but_not_its_memory(backend):
    exe = seqdsl.compile(MASKED, backend=backend)
    ins = exe.example_inputs(batch=2, steps=4)
    with pytest.raises(ValueError, match=r"M: input 'mask' has 3 steps \(shape \(2, 3\)\); expected 4, the steps "
                                         r"of input 'x' \(a cell reads all its inputs at every step\)"):
        exe(**{**ins, "mask": ins["mask"][:, :3]})
    out, _ = exe(**{**ins, "m": ins["m"][:, :2]})  # a memory has its own length
    assert tuple(out["y"].shape) == (2, 4, 3)


# ---- hostile files, names and sizes --------------------------------------------------------------
@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_load_refuses_fifos_devices_and_oversized_files(tmp_path, backend):
    exe = _compile("rnn", backend)
    fifo = tmp_path / "p.w"
    os.mkfifo(fifo)
    with pytest.raises(SpecError, match=f"cannot load weights from {fifo}: it is not a regular file"):
        exe.load(fifo)
    with pytest.raises(SpecError, match="cannot load weights from /dev/zero: it is not a regular file"):
        exe.load("/dev/zero")
    big = tmp_path / "big.w"
    with open(big, "wb") as f:
        f.truncate(4 << 30)  # sparse: nothing is written
    with pytest.raises(SpecError, match=f"cannot load weights from {big}: the file holds {4 << 30} bytes, more than "
                                        r"\d+ bytes, far more than the spec's parameters need"):
        exe.load(big)


def test_npz_names_and_headers_are_checked_before_any_data_is_read(tmp_path, monkeypatch):
    exe = _compile("rnn")
    ok = tmp_path / "ok.npz"
    exe.save(ok)
    arrays = dict(np.load(ok))
    monkeypatch.setattr(np.lib.npyio.NpzFile, "__getitem__",
                        lambda *a: (_ for _ in ()).throw(AssertionError("data read")))
    np.savez(tmp_path / "extra.npz", **arrays, huge=np.zeros((2, 2)))
    with pytest.raises(SpecError, match="parameters do not match the spec; unexpected huge"):
        exe.load(tmp_path / "extra.npz")
    np.savez(tmp_path / "shape.npz", **{**arrays, "W_ih": np.zeros((3, 3))})
    with pytest.raises(SpecError, match=r"parameter W_ih has shape \(3, 3\), the spec says"):
        exe.load(tmp_path / "shape.npz")


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_nul_bytes_in_weight_paths(backend):
    exe = _compile("rnn", backend)
    with pytest.raises(SpecError, match=r"cannot write weights 'a\\x00b': not a valid path \(it contains a NUL byte\)"):
        exe.save("a\0b")
    with pytest.raises(SpecError, match=r"cannot load weights from file 'a\\x00b': not a valid path"):
        exe.load("a\0b")


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_example_inputs_are_bounded(backend):
    exe = _compile("lstm", backend)
    with pytest.raises(ValueError, match=r"^LSTM: example_inputs\(batch=1000000000000, steps=5\): input 'x' would "
                                         r"hold 40000000000000 numbers, more than the limit of 2147483648 \(2\*\*31\)"):
        exe.example_inputs(batch=10 ** 12)


def test_compile_name_must_be_a_string():
    for name in (123, ["RNN"]):
        with pytest.raises(SpecError, match=rf"the argument name must be a definition name \(a str\), got "
                                            rf"{type(name).__name__} "):
            _compile("rnn", name=name)


def test_compile_never_writes_over_a_spec(tmp_path, capsys):
    (tmp_path / "r.seq").write_text((ROOT / "specs/rnn.seq").read_text())
    (tmp_path / "spec.seq").write_text('use "r.seq"\n')
    for target in ("spec.seq", "r.seq"):
        before = (tmp_path / target).read_bytes()
        r = _seqdsl(capsys, "compile", "spec.seq", "-o", target, cwd=tmp_path)
        assert r.returncode == 1 and f"refusing to write the generated module over {target}" in r.stderr
        assert (tmp_path / target).read_bytes() == before
    from seqdsl.cli import main

    assert main(["compile", str(tmp_path / "spec.seq"), "-o", str(tmp_path / "a\0b.py")]) == 1
    assert "not a valid path (it contains a NUL byte)" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["forward", "train", "to", "state_dict", "parameters", "load"])
def test_torch_parameters_and_instances_may_take_module_attribute_names(name):
    cell = (f"cell C(I = 3, H = 4) {{\n    in x: [I]\n    state h: [H] = zeros\n    param {name}: [H, I]\n"
            f"    param U: [H, H]\n    h = tanh({name} @ x + U @ h[t-1])\n    out y = h\n}}\n")
    m = seqdsl.compile(cell, backend="torch", dtype="float64")
    assert list(m.state_dict()) == [name, "U"] and list(m.params) == [name, "U"]
    model = cell + f"model M(D = 3) {{\n    in x: seq[D]\n    {name} = C(3, 4) over x\n    out y = {name}.y\n}}\n"
    m = seqdsl.compile(model, backend="torch", dtype="float64")
    assert list(m.state_dict()) == [f"{name}.{name}", f"{name}.U"]
    exe = seqdsl.compile(model, dtype="float64")
    exe.params = {k: v.detach().numpy().copy() for k, v in m.state_dict().items()}
    x = np.random.default_rng(0).standard_normal((2, 5, 3))
    assert np.allclose(m(x=torch.from_numpy(x))[0]["y"].detach().numpy(), exe(x=x)[0]["y"])
    m.load_state_dict(m.state_dict())


def test_delays_may_have_leading_zeros():
    spec = (ROOT / "specs/rnn.seq").read_text()
    assert "h[t-1]" in spec
    a, b = _compile(spec, dtype="float64"), _compile(spec.replace("h[t-1]", "h[t-0000000001]"), dtype="float64")
    x = a.example_inputs()
    assert np.array_equal(a(**x)[0]["y"], b(**x)[0]["y"])

"""The NumPy loop over the samples still running (seqdsl/backends/emit_rows.py): its kernel
`_row_runs`, which cells get it, and its values where the bundled-spec and random-program length
checks (tests/test_lengths.py, tests/test_differential.py) do not reach: initial states given,
unsorted lengths, per-step states read back, and hand-made masks that are not lengths."""

from __future__ import annotations

import re

import numpy as np
import pytest
from conftest import ROOT
from lengths_check import close

import seqdsl
from seqdsl.kernels.numpy_kernels import _row_runs as _row_runs3
from seqdsl.kernels.numpy_kernels import _unsort


def _row_runs(mask, reverse):
    order, inverse, runs = _row_runs3(mask, reverse)
    assert (order is None) == (inverse is None)
    if order is not None:
        assert np.argsort(order).tolist() == inverse.tolist()
    return order, runs


def mask_of(lens, T):
    return np.arange(T) < np.asarray(lens)[:, None]


def test_row_runs_sort_the_samples_and_cut_the_steps_into_stretches():
    order, runs = _row_runs(mask_of([3, 5, 1, 5], 6), False)
    assert order.tolist() == [1, 3, 0, 2]  # longest first, ties in the caller's order
    # steps 0: all four run; 1..2: the three longest; 3..4: the two of length 5; step 5: none
    assert runs == [(0, 1, 4), (1, 3, 3), (3, 5, 2)]
    assert _row_runs(mask_of([3, 5, 1, 5], 6), True)[1] == [(3, 5, 2), (1, 3, 3), (0, 1, 4)]
    x = np.arange(4)
    assert _unsort(x[order], np.argsort(order)).tolist() == [0, 1, 2, 3]


def test_row_runs_of_sorted_and_empty_rows():
    order, runs = _row_runs(mask_of([4, 4, 2], 4), False)
    assert order is None and runs == [(0, 2, 3), (2, 4, 2)]
    assert _row_runs(mask_of([2, 0], 3), False) == (None, [(0, 2, 1)])  # a row of no step never runs
    assert _row_runs(mask_of([1], 1).astype(np.float64), False) == (None, [(0, 1, 1)])  # 0/1 floats too


def test_a_mask_that_is_not_lengths_is_refused():
    with pytest.raises(ValueError, match="a length mask must be 1 on each row's first steps and 0 after them"):
        _row_runs(np.array([[1, 0, 1]], bool), False)


def _cell_source(source: str, fname: str) -> str:
    """One generated function of a module's source."""
    return re.search(rf"^def {fname}\(.*?(?=^def |\Z)", source, re.M | re.S).group(0)


@pytest.mark.parametrize("spec,cell,rows", [("peephole_lstm", "cell_PeepholeLSTM__I_8__H_16", True),
                                             ("attention", "cell_LuongDecoder__E_32__H_64", True),
                                             ("delay2", "cell_Delay2RNN__I_8__H_16", False)])
def test_which_loops_run_on_rows(spec, cell, rows):
    """NumPy inference with lengths runs on rows, also with attention weights out (a buffer sized by
    the memory); a cell reading h[t-2] keeps the masked loop, as every gradient twin does."""
    exe = seqdsl.compile(ROOT / f"specs/{spec}.seq")
    exe.variants.namespace(True, False)
    source = exe.variants.sources[(True, False, None, ())][0]
    forward, grad = _cell_source(source, cell), _cell_source(source, cell + "__grad")
    assert ("for t0__, t1__, n__ in _runs__:" in forward) == rows
    if rows:
        assert "np.where(_mask__t" not in forward and "np.where(_mask__t" in grad  # no state masked on rows
    assert "_runs__" not in grad


def test_rows_with_initial_states_and_unsorted_lengths():
    exe = seqdsl.compile(ROOT / "specs/peephole_lstm.seq", dtype="float64", sizes={"I": 3, "H": 5})
    rng = np.random.default_rng(1)
    B, T = 6, 7
    x = rng.normal(size=(B, T, 3))
    lens = np.array([2, 7, 1, 5, 7, 3])
    state = {"h": rng.normal(size=(B, 5)), "c": rng.normal(size=(B, 5))}
    kept = {k: v.copy() for k, v in state.items()}
    outs, final = exe(x=x, state=state, lengths={"x": lens})
    for k in state:  # the caller's arrays are not written
        np.testing.assert_array_equal(state[k], kept[k])
    for b in range(B):
        ob, fb = exe(x=x[b:b + 1, :lens[b]], state={k: v[b:b + 1] for k, v in state.items()})
        close(f"y[{b}]", outs["y"][b:b + 1, :lens[b]], ob["y"])
        assert not outs["y"][b, lens[b]:].any()
        for k in fb:
            close(f"final {k}[{b}]", final[k][b:b + 1], fb[k])


def test_rows_agree_with_the_masked_loop_on_per_step_states_and_attention():
    """The attention model reads its encoder's per-step states (`enc.h[last]`) and its decoder
    returns attention weights: the rows loop (inference) against the masked loop (the gradient
    twin's forward), float64."""
    exe = seqdsl.compile(ROOT / "specs/attention.seq", name="LuongTranslate", dtype="float64",
                         sizes={"Vs": 9, "Vt": 8, "E": 4, "H": 6})
    rng = np.random.default_rng(2)
    B = 5
    src, word = rng.integers(0, 9, (B, 6)), rng.integers(0, 8, (B, 4))
    lengths = {"src": np.array([3, 6, 1, 6, 2]), "word": np.array([4, 1, 3, 2, 4])}
    outs, final = exe(src=src, word=word, lengths=lengths)
    outs_m, final_m, _ = exe.value_and_grad({"src": src, "word": word}, {}, lengths=lengths)
    assert set(outs) == set(outs_m) and set(final) == set(final_m)
    for k in outs:
        close(f"output {k}", outs[k], outs_m[k])
    for k in final:
        close(f"final {k}", final[k], final_m[k])


def test_torch_row_runs_equal_numpys():
    torch = pytest.importorskip("torch")
    from seqdsl.kernels.torch_kernels import _row_runs as torch_row_runs

    rng = np.random.default_rng(3)
    for _ in range(20):
        T = int(rng.integers(1, 6))
        mask = mask_of(rng.integers(0, T + 1, size=int(rng.integers(1, 7))), T)
        for reverse in (False, True):
            want = _row_runs3(mask, reverse)
            got = torch_row_runs(torch.from_numpy(mask), reverse)
            assert got[2] == want[2]
            for a, b in zip(got[:2], want[:2]):
                assert (a is None and b is None) or a.tolist() == b.tolist()
    with pytest.raises(ValueError, match="a length mask must be 1 on each row's first steps"):
        torch_row_runs(torch.tensor([[False, True]]), False)


def test_torch_runs_on_rows_with_autograd():
    """The torch cell's `__rows` twin runs on a CPU, with autograd too: outputs, final states and
    the gradients of parameters, inputs and initial states equal each sample run alone (float64),
    and no_grad gives the same values."""
    torch = pytest.importorskip("torch")
    mod = seqdsl.compile(ROOT / "specs/peephole_lstm.seq", backend="torch", dtype="float64",
                         sizes={"I": 3, "H": 5}, fused=False)
    source = mod.variants.namespace(True, False) and mod.variants.sources[(True, False, None, ())][0]
    assert "if ROWS_ON_CPU__ and x__in.device.type == 'cpu':" in _cell_source(source, "cell_PeepholeLSTM__I_3__H_5")
    assert "in enumerate(_runs__):" in _cell_source(source, "cell_PeepholeLSTM__I_3__H_5__rows")
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 7, 3, generator=g, dtype=torch.float64, requires_grad=True)
    state = {k: torch.randn(6, 5, generator=g, dtype=torch.float64, requires_grad=True) for k in ("h", "c")}
    d_y = torch.randn(6, 7, 5, generator=g, dtype=torch.float64)
    lens = np.array([2, 7, 1, 5, 7, 3])
    outs, final = mod(x=x, state=state, lengths={"x": lens})
    ((outs["y"] * d_y).sum() + final["h"].sum() + 2 * final["c"].sum()).backward()
    batch = {"x": x.grad.clone(), **{k: v.grad.clone() for k, v in state.items()},
             **{k: p.grad.clone() for k, p in mod.params.items()}}
    with torch.no_grad():
        outs_n, final_n = mod(x=x, state=state, lengths={"x": lens})
    close("y without autograd", outs_n["y"].numpy(), outs["y"].detach().numpy())
    mod.zero_grad()
    for b, n in enumerate(lens):
        xb = x[b:b + 1, :n].detach().clone().requires_grad_(True)
        sb = {k: v[b:b + 1].detach().clone().requires_grad_(True) for k, v in state.items()}
        ob, fb = mod(x=xb, state=sb)
        ((ob["y"] * d_y[b:b + 1, :n]).sum() + fb["h"].sum() + 2 * fb["c"].sum()).backward()
        close(f"y[{b}]", outs["y"][b:b + 1, :n].detach().numpy(), ob["y"].detach().numpy())
        assert not outs["y"][b, n:].any()
        for k in fb:
            close(f"final {k}[{b}]", final[k][b:b + 1].detach().numpy(), fb[k].detach().numpy())
            close(f"initial-state gradient {k}[{b}]", batch[k][b:b + 1].numpy(), sb[k].grad.numpy())
        close(f"input gradient [{b}]", batch["x"][b:b + 1, :n].numpy(), xb.grad.numpy())
        assert not batch["x"][b, n:].any()
    for k, p in mod.params.items():
        close(f"parameter gradient {k}", batch[k].numpy(), p.grad.numpy())


@pytest.mark.parametrize("spec,name", [("peephole_lstm.seq", None), ("attention.seq", "LuongTranslate"),
                                       ("stacked.seq", None), ("tasks.seq", "Translate")])
def test_torch_rows_equal_the_masked_loop_a_gpu_runs(spec, name):
    """The masked loop runs on GPUs only now: on a CPU with `ROWS_ON_CPU__` off it must give what
    the rows loop gives, outputs, final states and parameter gradients (float64)."""
    pytest.importorskip("torch")
    mod = seqdsl.compile(ROOT / f"specs/{spec}", name=name, backend="torch", dtype="float64", fused=False)
    ns = mod.variants.namespace(True, False)
    inputs = mod.example_inputs(batch=5, steps=6, seed=1)
    rng = np.random.default_rng(7)
    lengths = {p.name: rng.integers(1, np.shape(inputs[p.name])[1] + 1, size=5)
               for p in mod.boundary.inputs if p.seq}
    got = []
    for rows in (True, False):
        ns["ROWS_ON_CPU__"] = rows
        mod.zero_grad()
        outs, final = mod(lengths=lengths, **inputs)
        sum((v.double() * (i + 1)).sum() for i, v in enumerate([*outs.values(), *final.values()])).backward()
        got.append({**{k: v.detach().numpy() for k, v in {**outs, **final}.items()},
                    **{f"d{k}": p.grad.numpy().copy() for k, p in mod.params.items() if p.grad is not None}})
    ns["ROWS_ON_CPU__"] = True
    assert got[0].keys() == got[1].keys()
    for k in got[0]:
        close(k, got[0][k], got[1][k])


@pytest.mark.parametrize("reverse", [False, True])
def test_torch_rows_kernels_cut_and_join_a_sequence(reverse):
    """`_rows_steps` cuts a (T, B, ...) value into each stretch's steps on its rows; `_rows_block`
    and `_rows_join` put per-step values back as (B, T, ...) with zeros where no sample ran."""
    torch = pytest.importorskip("torch")
    from seqdsl.kernels.torch_kernels import _row_runs as torch_row_runs
    from seqdsl.kernels.torch_kernels import _rows_block, _rows_join, _rows_keep, _rows_steps

    lens = [5, 3, 3, 1]  # sorted; T = 7: steps 5 and 6 reach no sample
    order, _, runs = torch_row_runs(torch.from_numpy(mask_of(lens, 7)), reverse)
    assert order is None
    x = torch.arange(7 * 4 * 2, dtype=torch.float64).reshape(7, 4, 2)
    cut = _rows_steps(x, runs, reverse, True)
    shared = _rows_steps(torch.arange(7.0), runs, reverse, False)
    blocks = []
    for (t0, t1, n), steps, steps_shared in zip(runs, cut, shared):
        assert len(steps) == t1 - t0 and all(s.shape == (n, 2) for s in steps)
        for t, s in zip(range(t0, t1), steps):
            assert torch.equal(s, x[t, :n]) and float(steps_shared[t - t0]) == t
        order_made = list(reversed(steps)) if reverse else list(steps)  # as the loop makes them
        blocks.append(_rows_block(order_made, 4, reverse))
    y = _rows_join(blocks, 7, reverse)
    want = x.transpose(0, 1) * torch.from_numpy(mask_of(lens, 7))[..., None]
    assert torch.equal(y, want)
    assert torch.equal(_rows_keep(torch.ones(2, 3), torch.zeros(4, 3)), torch.tensor([[1.0] * 3] * 2 + [[0.0] * 3] * 2))
    with pytest.raises(ValueError, match="every sample has length 0"):
        _rows_join([], 7, reverse)


def test_a_fused_cells_per_step_states_with_lengths_without_autograd():
    """A model reading a standard cell's per-step states runs the fused cell's loop twin, which
    on a CPU runs its own `__rows` twin (it once called one that was never generated)."""
    torch = pytest.importorskip("torch")
    text = 'use "gru.seq"\nmodel M(D = 3, H = 4) {\n    in x: seq[D]\n    g = GRU(D, H) over x\n    out y = g.h\n}\n'
    mod = seqdsl.compile(text, name="M", backend="torch", dtype="float64")
    x = torch.randn(2, 5, 3, dtype=torch.float64)
    with torch.no_grad():
        out, _ = mod(x=x, lengths={"x": [5, 2]})
        alone, _ = mod(x=x[1:, :2])
    close("y[1]", out["y"][1:, :2].numpy(), alone["y"].numpy())
    assert not out["y"][1, 2:].any()


def test_an_lstm_in_half_precision_or_under_autocast_keeps_off_the_saturated_gates():
    """`_run_padded` saturates an LSTM's gates with ±1e30, inf in float16 (every value was NaN):
    a float16 module, or one under autocast, runs by stretch instead."""
    torch = pytest.importorskip("torch")
    from seqdsl.kernels.torch_kernels import _saturates

    x32 = torch.randn(6, 7, 3)
    assert _saturates(x32) and _saturates(x32.double()) and not _saturates(x32.half())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not _saturates(x32)
    torch.manual_seed(0)
    mod = seqdsl.compile(ROOT / "specs/lstm.seq", backend="torch", sizes={"I": 3, "H": 4}).half()
    x = x32.half()
    lens = [7, 1, 2, 3, 4, 5]
    with torch.no_grad():
        out, final = mod(x=x, lengths={"x": lens})
        for b, n in enumerate(lens):
            alone, fin = mod(x=x[b:b + 1, :n])
            for got, want in ((out["y"][b:b + 1, :n], alone["y"]), (final["c"][b:b + 1], fin["c"])):
                assert not torch.isnan(got).any() and float((got - want).abs().max()) <= 2e-3  # float16


def test_every_per_step_input_of_a_cell_is_cleaned_and_unused_lengths_are_refused():
    """NaN in the padding of a cell's second input made every gradient NaN (only the input the
    step mask is named after was zeroed); a model's input that a run reads at another input's
    steps (`FOLLOWS`) is zeroed by that one's lengths, and refuses other lengths of its own (they
    were ignored, or, when it had a mask of its own, zeroed real steps of the run)."""
    torch = pytest.importorskip("torch")
    from seqdsl.backends.validate import InputError

    cell = ("cell Two(I = 3, J = 2, H = 4) {\n    in x: [I]\n    in u: [J]\n    state h: [H]\n"
            "    param W: [H, I]\n    param V: [H, J]\n    param U: [H, H]\n"
            "    h = tanh(W @ x + V @ u + U @ h[t-1])\n    out y = h\n}\n")
    exe = seqdsl.compile(cell, dtype="float64")
    inputs = exe.example_inputs(batch=2, steps=4, seed=1)
    inputs["u"][1, 2:] = np.nan
    _, _, grads = exe.value_and_grad(inputs, {"y": np.ones((2, 4, 4))}, lengths={"x": [4, 2]})
    assert all(np.isfinite(v).all() for v in grads["params"].values()) and np.isfinite(grads["inputs"]["u"]).all()
    mod = seqdsl.compile(cell, backend="torch", dtype="float64")
    out, _ = mod(lengths={"x": [4, 2]}, **{k: torch.from_numpy(v) for k, v in inputs.items()})
    out["y"].sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in mod.params.values())
    model = cell + ("model TwoIn(D = 3, H = 4) {\n    in a: seq[D]\n    in b: seq[2]\n"
                    "    r = Two(D, 2, H) over (x = a, u = b)\n    out y = r.y\n}\n")
    exe = seqdsl.compile(model, name="TwoIn", dtype="float64")
    inputs = exe.example_inputs(batch=2, steps=4, seed=1)
    with pytest.raises(InputError, match="TwoIn: lengths for 'b' differ from those of 'a': a run reads 'b' at the "
                                         "steps of 'a', so it follows its lengths; give the lengths of 'a' alone"):
        exe(lengths={"a": [4, 2], "b": [4, 1]}, **inputs)
    exe(lengths={"a": [4, 2], "b": [4, 2]}, **inputs)  # the lengths it follows: nothing to refuse
    # NaN in b past a's lengths (b's padding for the run) reaches no gradient, on both backends
    inputs["b"][1, 2:] = np.nan
    _, _, grads = exe.value_and_grad(inputs, {"y": np.ones((2, 4, 4))}, lengths={"a": [4, 2]})
    assert all(np.isfinite(v).all() for v in grads["params"].values()) and np.isfinite(grads["inputs"]["b"]).all()
    mod = seqdsl.compile(model, name="TwoIn", backend="torch", dtype="float64")
    out, _ = mod(lengths={"a": [4, 2]}, **{k: torch.from_numpy(v) for k, v in inputs.items()})
    out["y"].sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in mod.params.values())
    # b read on its own too (its own axis, its own mask): lengths other than a's are still refused
    both = seqdsl.compile(model.replace("    out y = r.y\n", "    out y = r.y\n    out z = tanh(b)\n"), name="TwoIn")
    with pytest.raises(InputError, match="lengths for 'b' differ from those of 'a'"):
        both(lengths={"a": [4, 3], "b": [4, 1]}, **both.example_inputs(batch=2, steps=4))
    assert both.variants.namespace(True, False)["FOLLOWS"] == {"b": "a"}

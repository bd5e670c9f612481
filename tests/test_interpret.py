"""Both backends (optimised generated code) against the reference interpreter (the plain IR)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import all_definitions

import seqdsl
from seqdsl.interpret import run

DEFS = all_definitions()
IDS = [f"{p.stem}-{n}" for p, n in DEFS]


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("path,name", DEFS, ids=IDS)
def test_backend_matches_interpreter(path, name, backend):
    if backend == "torch":
        torch = pytest.importorskip("torch")
    exe = seqdsl.compile(path, name=name, backend=backend, dtype="float64")
    if backend == "torch":
        exe.eval()  # the interpreter is inference: dropout is the identity
    exe.init_params(7)
    params = {k: (v.detach().numpy() if backend == "torch" else v) for k, v in exe.params.items()}
    # the inputs of a NumPy float64 executable (for numpy, `exe` is one)
    ref = seqdsl.compile(path, name=name, dtype="float64") if backend == "torch" else exe
    inputs = ref.example_inputs(batch=2, steps=5, seed=3)
    want, want_final = run(seqdsl.load(path), name, None, params, inputs)
    if backend == "torch":
        got, final = exe(**{k: torch.from_numpy(v) for k, v in inputs.items()})
        got = {k: v.detach().numpy() for k, v in got.items()}
        final = {k: v.detach().numpy() for k, v in final.items()}
    else:
        got, final = exe(**inputs)
    assert set(got) == set(want) and set(final) == set(want_final)
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=0, atol=1e-10, err_msg=k)
    for k in want_final:
        np.testing.assert_allclose(final[k], want_final[k], rtol=0, atol=1e-10, err_msg=k)


def test_interpreter_initial_state_and_two_step_delay():
    from conftest import ROOT

    exe = seqdsl.compile(ROOT / "specs/delay2.seq", dtype="float64")
    inputs = exe.example_inputs(batch=3, steps=7)
    h0 = np.random.default_rng(1).standard_normal((3, 16))
    want, wf = run(seqdsl.load(ROOT / "specs/delay2.seq"), "Delay2RNN", None, exe.params, inputs, {"h": h0})
    got, gf = exe(**inputs, state={"h": h0})
    np.testing.assert_allclose(got["y"], want["y"], atol=1e-12)
    np.testing.assert_allclose(gf["h"], wf["h"], atol=1e-12)

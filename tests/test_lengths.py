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
    assert exe.with_lengths.namespace()["MASKS"] == {"_mask": ("steps", "x")}
    assert seqdsl.compile(ROOT / "specs/lstm.seq")._ns["MASKS"] == {}  # the plain module takes none


def test_executables_with_lengths_copy_and_pickle():
    import copy
    import pickle

    exe = seqdsl.compile(ROOT / "specs/gru.seq", dtype="float64")
    x = exe.example_inputs(batch=2, steps=5)["x"]
    want = exe(x=x, lengths={"x": [5, 2]})[0]["y"]
    for other in (copy.deepcopy(exe), pickle.loads(pickle.dumps(exe))):
        close("y", other(x=x, lengths={"x": [5, 2]})[0]["y"], want)

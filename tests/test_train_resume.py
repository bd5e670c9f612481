"""Exact resume: a run killed with SIGKILL (after a step, after its log line, half-way through writing a
checkpoint, twice) and resumed gives the same per-step losses, the same epoch metrics and the same
final weights, bit for bit, as a run never interrupted. The killed runs are real processes
(SEQDSL_TRAIN_FAULT tells the loop where to kill itself); the resumed and reference runs run here."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT
from test_train import MODELS, reverse_data, tagger_data

import seqdsl

SPEC = ROOT / "specs" / "tasks.seq"
SCRIPT = "import json, sys, seqdsl; seqdsl.train(**json.loads(sys.argv[1]))"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def killed(kw: dict, fault: str) -> None:
    """Run seqdsl.train(**kw) in a process that SIGKILLs itself at `fault`."""
    env = {**os.environ, "SEQDSL_TRAIN_FAULT": fault, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps(kw)], capture_output=True, text=True, env=env,
                       cwd=ROOT, timeout=120)
    assert r.returncode == -9, f"expected SIGKILL at {fault}, got {r.returncode}: {r.stderr[-2000:]}"


def records(out) -> tuple:
    lines = [json.loads(line) for line in open(out / "metrics.jsonl")]
    steps = [r for r in lines if r["type"] == "step"]
    epochs = [{k: v for k, v in r.items() if k != "time_s"} for r in lines if r["type"] == "epoch"]
    return steps, epochs


def same_run(a, b, weights: str) -> None:
    assert records(a) == records(b)
    if weights.endswith(".npz"):
        wa, wb = np.load(a / weights), np.load(b / weights)
        assert sorted(wa.files) == sorted(wb.files)
        assert all(np.array_equal(wa[k], wb[k]) for k in wa.files)
    else:
        import torch
        from safetensors.torch import load_file

        wa, wb = load_file(str(a / weights)), load_file(str(b / weights))
        assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    from seqdsl.train import checkpoint

    ta, sa = checkpoint.read(a / "checkpoint")
    tb, sb = checkpoint.read(b / "checkpoint")
    assert ta.keys() == tb.keys() and all(np.array_equal(ta[k], tb[k]) for k in ta)  # weights, moments, RNGs
    for s in (sa, sb):
        s.pop("elapsed"), s.pop("log_offset")  # the log's epoch lines hold times
        for e in s["history"]:
            e.pop("time_s")
        if s["best"]:
            s["best"].pop("time_s", None)
    assert sa == sb


def test_torch_run_killed_mid_epoch_resumes_exactly(tmp_path):
    """Dropout, a validation set, warmup, cosine and clipping: killed after step 7 (its last checkpoint
    at step 6), resumed, the same as never killed."""
    spec = tmp_path / "models.seq"
    spec.write_text(MODELS)
    data, valid = tagger_data(tmp_path / "t.jsonl", 40, 0), tagger_data(tmp_path / "v.jsonl", 12, 1)
    kw = dict(spec=str(spec), name="Tagger", data=str(data), valid=str(valid), epochs=3, batch=8, lr=0.05,
              checkpoint_every=3, clip=1.0, schedule="cosine", warmup=2, progress=False, fused=False)
    seqdsl.train(**{**kw, "out": tmp_path / "ref"})
    run = tmp_path / "run"
    killed({**kw, "out": str(run)}, "kill-step@7")
    from seqdsl.train import checkpoint

    assert checkpoint.read(run / "checkpoint")[1]["step"] == 6
    assert len(records(run)[0]) == 6  # step 7 died before its line
    res = seqdsl.train(**{**kw, "out": run, "resume": True})
    assert res["steps"] == 15
    same_run(tmp_path / "ref", run, "weights.safetensors")


@pytest.fixture(scope="module")
def numpy_reference(tmp_path_factory):
    """The data, the options and the uninterrupted run the NumPy cases compare with."""
    d = tmp_path_factory.mktemp("numpy_resume")
    data, valid = reverse_data(d / "t.jsonl", 40, 0), reverse_data(d / "v.jsonl", 12, 1)
    kw = dict(spec=str(SPEC), name="Translate", data=str(data), valid=str(valid), epochs=3, batch=8, lr=0.02,
              sizes={"E": 4, "H": 8}, checkpoint_every=3, optimizer="adamw", backend="numpy", progress=False)
    seqdsl.train(**{**kw, "out": d / "ref"})
    return kw, d / "ref"


@pytest.mark.parametrize("faults", [["kill-checkpoint@3"], ["kill-log@5"], ["kill-step@4", "kill-step@11"]])
def test_numpy_run_killed_anywhere_resumes_exactly(tmp_path, numpy_reference, faults):
    """Half-way through writing a checkpoint (the old one stays whole), after the last step of an epoch
    was logged (before its validation), and killed twice."""
    kw, ref = numpy_reference
    run = tmp_path / "run"
    for i, fault in enumerate(faults):
        killed({**kw, "out": str(run), "resume": i > 0}, fault)
    if faults == ["kill-checkpoint@3"]:
        assert list(run.glob(".checkpoint.*.tmp")), "the kill should leave a half-written temporary file"
    seqdsl.train(**{**kw, "out": run, "resume": True})
    assert not list(run.glob(".*.tmp"))
    same_run(ref, run, "weights.npz")

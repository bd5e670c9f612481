"""Several processes (deliverable 6): `torchrun --nproc_per_node=2` with batch B takes the steps one
process takes with batch 2B (torch DistributedDataParallel on gloo, float64: the same weights and
losses within rounding), the first process writing the run's files."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT
from test_train import reverse_data

import seqdsl

SPEC = ROOT / "specs" / "tasks.seq"
SCRIPT = "import json, sys, seqdsl\nseqdsl.train(**json.loads(sys.argv[1]))\n"


def test_two_processes_with_batch_b_equal_one_with_batch_2b(tmp_path):
    torch = pytest.importorskip("torch")
    if not torch.distributed.is_available():
        pytest.skip("torch.distributed is not available")
    data = reverse_data(tmp_path / "t.jsonl", 40, 0, max_len=6)
    kw = dict(spec=str(SPEC), name="Translate", data=str(data), steps=4, lr=0.05, sizes={"E": 4, "H": 8},
              dtype="float64", clip=1.0, progress=False, fused=False)
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        seqdsl.train(**kw, batch=8, out=tmp_path / "one")
    finally:
        torch.set_num_threads(n)
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                        str(script), json.dumps({**kw, "batch": 4, "out": str(tmp_path / "two")})],
                       capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    from safetensors.numpy import load_file

    one, two = load_file(str(tmp_path / "one" / "weights.safetensors")), load_file(
        str(tmp_path / "two" / "weights.safetensors"))
    assert one.keys() == two.keys()
    for k in one:
        np.testing.assert_allclose(two[k], one[k], rtol=0, atol=1e-10, err_msg=k)
    assert not np.array_equal(one["word.W"], seqdsl.compile(SPEC, name="Translate", sizes={
        "Vs": 9, "Vt": 9, "E": 4, "H": 8}, dtype="float64").params["word.W"])  # it did learn
    steps = [[json.loads(line) for line in open(tmp_path / d / "metrics.jsonl") if '"type": "step"' in line]
             for d in ("one", "two")]
    assert len(steps[0]) == len(steps[1]) == 4
    for a, b in zip(*steps):
        assert abs(a["loss"] - b["loss"]) < 1e-10 and abs(a["grad_norm"] - b["grad_norm"]) < 1e-10

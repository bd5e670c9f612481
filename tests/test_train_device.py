"""`seqdsl train --device D` and `seqdsl.train(device=D)`: a device torch cannot train on here (CUDA
without CUDA, a GPU index past the last, not a device, `meta`) is a one-line error naming the flag and
the devices there are, exit status 1, before anything runs (no run directory, no traceback, never
"internal error"). CUDA's presence is faked with monkeypatch, so the messages are the same on every
machine."""

from __future__ import annotations

from pathlib import Path

import pytest

import seqdsl
from seqdsl.cli import main
from seqdsl.data import write_task
from seqdsl.errors import SpecError
from seqdsl.train.options import check_device

torch = pytest.importorskip("torch")

SPEC = str(Path(__file__).resolve().parents[1] / "specs" / "tasks.seq")


@pytest.fixture
def data(tmp_path):
    return write_task("reverse", 20, 1, tmp_path / "rev.jsonl", max_len=4)


def _gpus(monkeypatch, n: int, built: bool = True):
    """Make torch report `n` CUDA devices (built: whether this torch was compiled with CUDA), and no
    MPS or XPU device."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: n > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: n)
    monkeypatch.setattr(torch.backends.cuda, "is_built", lambda: built)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    if hasattr(torch, "xpu"):
        monkeypatch.setattr(torch.xpu, "is_available", lambda: False)


NO_CUDA = "this torch has no CUDA (torch.cuda.is_available() is False: it was built without CUDA)"
CLI_CASES = [  # (device, CUDA devices, built with CUDA, the message after "seqdsl: error: ")
    ("cuda", 0, False, f"--device cuda: {NO_CUDA}; use --device cpu"),
    ("cuda:1", 0, False, f"--device cuda:1: {NO_CUDA}; use --device cpu"),
    ("cuda", 0, True, "--device cuda: this machine has no CUDA device for torch (torch.cuda.is_available() is "
                      "False); use --device cpu"),
    ("cuda:1", 1, True, "--device cuda:1: there is 1 CUDA device here (cuda:0); use --device cpu or --device cuda:0"),
    ("cuda:2", 2, True, "--device cuda:2: there are 2 CUDA devices here (cuda:0 to cuda:1); use --device cpu or "
                        "--device cuda:0 or --device cuda:1"),
    ("foo", 0, False, "--device foo: not a device torch knows (devices are written cpu, cuda, cuda:N, mps); use "
                      "--device cpu"),
    ("cuda:x", 1, True, "--device cuda:x: not a device torch knows (devices are written cpu, cuda, cuda:N, mps); "
                        "use --device cpu or --device cuda:0"),
    ("", 0, False, "--device '': not a device torch knows (devices are written cpu, cuda, cuda:N, mps); use "
                   "--device cpu"),
    ("meta", 0, False, "--device meta: a meta tensor has a shape but no data, so nothing can be trained on it; "
                       "use --device cpu"),
    ("hip", 0, False, "--device hip: seqdsl trains on cpu, cuda, mps or xpu, not on hip devices; use --device cpu"),
    ("mps", 0, False, "--device mps: this machine has no MPS device for torch (torch.backends.mps.is_available() "
                      "is False); use --device cpu"),
]


@pytest.mark.parametrize("device, n, built, message", CLI_CASES)
def test_a_device_torch_cannot_train_on_is_a_one_line_error(monkeypatch, capsys, tmp_path, data, device, n, built,
                                                              message):
    _gpus(monkeypatch, n, built)
    out = tmp_path / "run"
    code = main(["train", SPEC, "--def", "Translate", "--data", str(data), "--out", str(out), "--steps", "2",
                 "--device", device, "-q"])
    err = capsys.readouterr().err
    assert code == 1
    assert err == f"seqdsl: error: {message}\n"
    assert not out.exists()  # refused before anything ran


@pytest.mark.parametrize("device, message", [
    ("cuda", f"device='cuda': {NO_CUDA}; use device='cpu'"),
    ("meta", "device='meta': a meta tensor has a shape but no data, so nothing can be trained on it; use "
             "device='cpu'"),
    ("foo", "device='foo': not a device torch knows (devices are written cpu, cuda, cuda:N, mps); use device='cpu'"),
])
def test_the_python_api_says_the_same_about_device(monkeypatch, tmp_path, data, device, message):
    _gpus(monkeypatch, 0, built=False)
    out = tmp_path / "run"
    with pytest.raises(SpecError) as e:
        seqdsl.train(SPEC, name="Translate", data=data, out=out, steps=1, device=device, progress=False)
    assert e.value.message == message
    assert not out.exists()


def test_devices_torch_has_pass_the_check(monkeypatch):
    _gpus(monkeypatch, 2)
    assert [check_device(d, "--device") for d in ("cpu", "cpu:0", "cuda", "cuda:0", "cuda:1")] == \
        ["cpu", "cpu:0", "cuda", "cuda:0", "cuda:1"]


def test_the_numpy_backend_still_names_its_own_limit(tmp_path, data):
    with pytest.raises(SpecError, match="the numpy backend runs on the CPU only, not on device 'meta'"):
        seqdsl.train(SPEC, name="Translate", data=data, out=tmp_path / "run", steps=1, device="meta",
                     backend="numpy", progress=False)


def test_training_on_the_cpu_device_by_name_runs(tmp_path, data):
    summary = seqdsl.train(SPEC, name="Translate", data=data, out=tmp_path / "run", steps=1, device="cpu:0",
                           batch=4, sizes={"E": 4, "H": 8}, progress=False)
    assert summary["steps"] == 1

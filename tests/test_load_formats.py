"""Both backends' `load` read both weight formats (docs/train.md, docs/api.md): .npz (allow_pickle=False)
and safetensors (the safetensors package), decided by the file's content, not its name; the names,
shapes and dtypes are checked the same way for both, and anything else is a clear `SpecError`."""

from __future__ import annotations

import struct
import sys
from pathlib import Path

import numpy as np
import pytest

import seqdsl
from seqdsl.errors import SpecError

torch = pytest.importorskip("torch")
safetensors_numpy = pytest.importorskip("safetensors.numpy")

SPEC = Path(__file__).resolve().parents[1] / "specs" / "tasks.seq"
FORMATS = {"npz": "numpy", "safetensors": "torch"}  # the format each backend's save writes


def _compile(backend: str, dtype: str = "float32", name: str = "Translate"):
    return seqdsl.compile(SPEC, name=name, backend=backend, dtype=dtype)


def _params(exe) -> dict:
    return {k: (v.detach().cpu().numpy() if torch.is_tensor(v) else v) for k, v in exe.params.items()}


@pytest.fixture
def files(tmp_path):
    """{format: (path, the weights it holds)}, each written by its backend's save under a name that
    says nothing of the format (the content decides)."""
    out = {}
    for fmt, backend in FORMATS.items():
        exe = _compile(backend)
        exe.init_params(11 if fmt == "npz" else 12)
        path = tmp_path / f"weights-{fmt}"
        exe.save(path)
        out[fmt] = (path, _params(exe))
    return out


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("fmt", ["npz", "safetensors"])
def test_each_backend_reads_each_format(files, monkeypatch, backend, fmt):
    def never(*a, **k):
        raise AssertionError("torch.load (pickle) must never be used")

    monkeypatch.setattr(torch, "load", never)
    path, weights = files[fmt]
    exe = _compile(backend, "float64")
    exe.load(path)
    got = _params(exe)
    assert set(got) == set(weights)
    for k, v in weights.items():
        assert got[k].dtype == np.float64 and np.array_equal(got[k], v.astype(np.float64)), k


def test_the_content_decides_not_the_name(files, tmp_path):
    path, weights = files["safetensors"]
    misnamed = tmp_path / "w.npz"
    misnamed.write_bytes(path.read_bytes())
    exe = _compile("numpy")
    exe.load(misnamed)
    assert all(np.array_equal(exe.params[k], v) for k, v in weights.items())


def _safetensors_bytes(tensors: dict) -> bytes:
    return safetensors_numpy.save(tensors)


def _bad_files(tmp_path, files) -> dict:
    """{file name: (its bytes, the message after 'PATH' for numpy, for torch)}."""
    npz_path, weights = files["npz"]
    st = files["safetensors"][0].read_bytes()
    first = sorted(weights)[0]
    shape = weights[first].shape
    wrong_shape = dict(weights, **{first: np.zeros((shape[0] + 1,) + shape[1:], np.float32)})
    names = dict(weights, extra=np.zeros(2, np.float32))
    del names[first]
    np.savez(tmp_path / "short.npz", **{k: v for k, v in weights.items() if k != first})
    junk = ": error: cannot load weights from {p}: not an .npz file (a zip archive of named arrays, as exe.save " \
           "writes) or a safetensors file (an 8-byte header length, then JSON, as module.save writes)"
    both = {
        "junk": (b"hello, weights\n", junk),
        "empty": (b"", ": error: cannot load weights from {p}: the file is empty, not an .npz or safetensors file"),
        "header-past-end": (struct.pack("<Q", 10_000) + b'{"a": 1}',
                            ": error: cannot load weights from {p}: the safetensors file is damaged or truncated "
                            "(its header says 10000 bytes, and 8 follow)"),
        "names.st": (_safetensors_bytes(names), f": error: {{p}}: parameters do not match the spec; missing {first}; "
                     "unexpected extra"),
        "names.npz": ((tmp_path / "short.npz").read_bytes(),
                      f": error: {{p}}: parameters do not match the spec; missing {first}"),
        "shape.st": (_safetensors_bytes(wrong_shape), f": error: {{p}}: parameter {first} has shape "
                     f"{wrong_shape[first].shape}, the spec says {shape}"),
        "complex.st": (_safetensors_bytes(dict(weights, **{first: weights[first].astype(np.complex64)})),
                       f": error: {{p}}: parameter {first} holds complex numbers; weights are real numbers"),
        "truncated.st": (st[:len(st) - 16], None),
    }
    return both


def test_bad_files_are_clear_errors_on_both_backends(tmp_path, files):
    for name, (content, message) in _bad_files(tmp_path, files).items():
        path = tmp_path / name
        path.write_bytes(content)
        for backend in ("numpy", "torch"):
            with pytest.raises(SpecError) as e:
                _compile(backend).load(path)
            text = str(e.value)
            if message is None:
                assert text.startswith(f"seqdsl: error: cannot load weights from {path}: the safetensors file is "
                                       "damaged or truncated ("), (backend, text)
            else:
                assert text == "seqdsl" + message.format(p=path), (backend, name, text)


def test_bfloat16_weights_need_the_torch_backend(tmp_path, files):
    from safetensors.torch import save

    _, weights = files["npz"]
    path = tmp_path / "bf16.safetensors"
    path.write_bytes(save({k: torch.from_numpy(v).to(torch.bfloat16) for k, v in weights.items()}))
    module = _compile("torch")
    module.load(path)  # torch has bfloat16
    first = sorted(weights)[0]
    assert torch.allclose(module.params[first], torch.from_numpy(weights[first]).to(torch.bfloat16).float())
    with pytest.raises(SpecError) as e:
        _compile("numpy").load(path)
    assert e.value.message == f"cannot load weights from {path}: parameter {sorted(weights)[0]} holds BF16 numbers, " \
                              "which NumPy has no type for"
    assert e.value.hint == "load them with the torch backend, or save them as float32"


def test_numpy_reads_safetensors_without_torch_but_needs_the_package(files, monkeypatch):
    monkeypatch.setitem(sys.modules, "safetensors", None)
    monkeypatch.setitem(sys.modules, "safetensors.numpy", None)
    path = files["safetensors"][0]
    with pytest.raises(SpecError) as e:
        _compile("numpy").load(path)
    assert e.value.message == f"cannot load weights from {path}: reading a safetensors file needs the safetensors " \
                              "package (not torch)"
    _compile("numpy").load(files["npz"][0])  # .npz needs nothing more


def test_weights_of_another_model_say_so_in_either_format(files):
    for fmt in FORMATS:
        path = files[fmt][0]
        for backend in ("numpy", "torch"):
            with pytest.raises(SpecError, match=rf"{path}: parameters do not match the spec; missing "):
                _compile(backend, name="Sentiment").load(path)

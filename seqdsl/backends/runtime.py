"""The executable contract shared by both backends (see docs/api.md), and safe weight files.

In:  a generated module's namespace (`PARAMS`, `INPUTS`, `STATE_SHAPES`, `DTYPE`, `forward`, ...),
     its source and filename, and the spec's names for its dims (for messages).
Out: `NumpyExecutable`: `.params` (spec name → array), `init_params(seed)`,
     `save(path)` (.npz) / `load(path)` (.npz, allow_pickle=False, or safetensors, whichever the
     file's first bytes say; names, shapes and dtypes checked the same way for both),
     `example_inputs(batch, steps, seed)`, `outputs, final = exe(**inputs, state=None)` and
     `value_and_grad(...)`; every argument is checked by `validate.Boundary` before generated code
     runs. It deep-copies and pickles (the namespace is rebuilt from the source), and its repr
     names the spec, kind, sizes and parameter shapes.
     Helpers used by both backends: `draw` (initializers), `check_loaded`, `example_inputs`,
     `describe` (the repr), `write_file` (seqdsl.files: write a temporary file in the target's folder, fsync,
     rename over the target: a failed save never destroys the file it replaces; targets that are
     not regular files are refused) and `read_weights_file` (clear `SpecError`s for missing, empty,
     truncated or foreign files; FIFOs and devices are refused before they are opened, and files
     larger than `weights_limit(PARAMS)` before they are read). `load_npz` checks member names,
     then each member's .npy header (dtype, shape), before reading any array data. `load_weights`
     (both backends' `load`) reads .npz that way or safetensors (the header's names, dtypes and
     shapes checked before the safetensors package reads the tensors; never pickle), deciding by
     content (`weights_format`: b"PK" is a zip, an 8-byte length then b"{" safetensors). Paths
     with a NUL byte are refused with a message naming them.
"""

from __future__ import annotations

import os
import stat
import struct

import numpy as np

from ..errors import SpecError
from ..files import nul_check, write_file
from .hidden import clean_padding, hidden_inputs, numpy_keep, unused_lengths, zero_padding
from .loss import NumpyOps, nll, nll_grad, observed_values
from .predicting import Predicting
from .validate import Boundary, NumpyArrays


def draw(shape, init, rng: np.random.Generator) -> np.ndarray:
    kind, scale = init
    if kind == "uniform":
        return rng.uniform(-scale, scale, size=shape)
    if kind == "normal":
        return rng.normal(0.0, scale, size=shape)
    return np.full(shape, scale)


def check_loaded(expected: dict, arrays: dict, path) -> None:
    """Names, shapes and dtypes (real numbers) of loaded weights against the spec's `PARAMS`."""
    check_loaded_names(expected, arrays, path)
    for k, (shape, _) in expected.items():
        kind = _kind(arrays[k])
        if kind not in ("float", "int"):
            raise SpecError(f"{path}: parameter {k} holds {kind}; weights are real numbers")
        if tuple(arrays[k].shape) != tuple(shape):
            raise SpecError(f"{path}: parameter {k} has shape {tuple(arrays[k].shape)}, the spec says {tuple(shape)}")


def check_loaded_names(expected: dict, arrays, path) -> None:
    """The loaded names against the spec's `PARAMS`: none missing, none unexpected."""
    missing = sorted(set(expected) - set(arrays))
    extra = sorted(set(arrays) - set(expected))
    if missing or extra:
        raise SpecError(f"{path}: parameters do not match the spec"
                        + (f"; missing {', '.join(missing)}" if missing else "")
                        + (f"; unexpected {', '.join(extra)}" if extra else ""))


def _kind(a) -> str:
    """'float', 'int', or what else an array holds, in words (numpy arrays and torch tensors)."""
    dt = getattr(a, "dtype", None)
    if isinstance(dt, np.dtype):
        return {"f": "float", "i": "int", "u": "int", "c": "complex numbers", "b": "booleans", "U": "strings",
                "S": "bytes", "O": "Python objects"}.get(dt.kind, f"values of dtype {dt}")
    if getattr(dt, "is_complex", False):
        return "complex numbers"
    if getattr(dt, "is_floating_point", False):
        return "float"
    if str(dt) == "torch.bool":
        return "booleans"
    return "int" if dt is not None else f"a {type(a).__name__}"


def example_inputs(ns: dict, batch: int, steps: int, seed: int, vocab: dict | None = None) -> dict:
    """Random inputs: floats standard normal in the module's dtype, token ids below each vocabulary
    (`vocab`: name → size, overriding the namespace's)."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, (_text, dims, dtype, seq, v) in ns["INPUTS"].items():
        vocab_ = (vocab or {}).get(name, v)
        if dtype == "int":
            shape = (batch, steps) if seq else (batch,)
            out[name] = rng.integers(0, vocab_ or 1, size=shape)
        else:
            shape = (batch,) + ((steps,) if seq else ()) + tuple(dims)
            out[name] = rng.standard_normal(shape).astype(ns["DTYPE"])
    return out


def describe(obj, backend: str, dtype, shapes: dict, extra: str = "") -> str:
    """`LSTM` as text: class, kind, name, sizes, backend, dtype, and every parameter's shape."""
    sizes = ", ".join(f"{k}={v}" for k, v in obj.sizes.items())
    total = sum(int(np.prod(s, dtype=np.int64)) for s in shapes.values())
    head = (f"{type(obj).__name__}({obj.kind} {obj.name}({sizes}), backend={backend}, dtype={dtype}{extra}, "
            f"{total} parameters")
    if not shapes:
        return head + ")"
    width = max(len(k) for k in shapes)
    rows = [f"  {k:<{width}}  ({', '.join(str(d) for d in s)}{',' if len(s) == 1 else ''})"
            for k, s in shapes.items()]
    return head + ":\n" + "\n".join(rows) + "\n)"


# ---- files --------------------------------------------------------------------------------
def weights_limit(param_specs: dict) -> int:
    """The largest weights file worth reading for these parameters: twice their bytes at 8 bytes a
    number, plus 4 MiB for headers and names."""
    n = sum(int(np.prod(shape, dtype=np.int64)) for shape, _ in param_specs.values())
    return 2 * 8 * n + (4 << 20)


def read_weights_file(path, expect: str, limit: int | None = None) -> bytes:
    """The bytes of a weights file, or a `SpecError` naming it (missing, a folder, not a regular
    file, larger than `limit` bytes, empty). Non-regular files are refused before they are opened
    (and again on the descriptor, opened O_NONBLOCK), so a FIFO cannot block."""
    nul_check(path, "load weights from", "file")
    try:
        st = os.stat(path)
        if stat.S_ISDIR(st.st_mode):
            raise SpecError(f"cannot load weights from {path}: it is a folder, not {expect}")
        if not stat.S_ISREG(st.st_mode):
            raise SpecError(f"cannot load weights from {path}: it is not a regular file, not {expect}")
        if limit is not None and st.st_size > limit:
            raise SpecError(f"cannot load weights from {path}: the file holds {st.st_size} bytes, more than "
                            f"{limit} bytes, far more than the spec's parameters need")
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise SpecError(f"cannot load weights from {path}: it is not a regular file, not {expect}")
            cap = limit if limit is not None else 1 << 62
            chunks, size = [], 0
            while size <= cap:
                chunk = os.read(fd, min(1 << 20, cap + 1 - size))
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
        finally:
            os.close(fd)
    except SpecError:
        raise
    except FileNotFoundError:
        raise SpecError(f"cannot load weights from {path}: no such file") from None
    except IsADirectoryError:
        raise SpecError(f"cannot load weights from {path}: it is a folder, not {expect}") from None
    except OSError as e:
        raise SpecError(f"cannot load weights from {path}: {e.strerror or e}") from None
    data = b"".join(chunks)
    if limit is not None and len(data) > limit:
        raise SpecError(f"cannot load weights from {path}: the file holds more than {limit} bytes, "
                        "far more than the spec's parameters need")
    if not data:
        raise SpecError(f"cannot load weights from {path}: the file is empty, not {expect}")
    return data


WEIGHTS_FILE = "an .npz or safetensors file"


def _check_npz_magic(path, data: bytes) -> None:
    """Refuse a single .npy array or anything that is not a zip archive, before unzipping."""
    if data.startswith(b"\x93NUMPY"):
        raise SpecError(f"cannot load weights from {path}: it holds a single array (.npy), "
                        "not named weights (.npz, as written by exe.save)")
    if not data.startswith(b"PK"):
        raise SpecError(f"cannot load weights from {path}: not an .npz file (an .npz file is a zip archive "
                        "of named arrays, as written by exe.save)")


def weights_format(data: bytes, path) -> str:
    """"npz" (a zip archive: b"PK" first) or "safetensors" (an 8-byte little-endian header length,
    then the JSON header's b"{"), read from the file's first bytes; anything else is a `SpecError`."""
    if data.startswith(b"PK"):
        return "npz"
    if len(data) > 8 and data[8:9] == b"{":
        return "safetensors"
    if data.startswith(b"\x93NUMPY"):
        _check_npz_magic(path, data)
    raise SpecError(f"cannot load weights from {path}: not an .npz file (a zip archive of named arrays, as "
                    "exe.save writes) or a safetensors file (an 8-byte header length, then JSON, as module.save "
                    "writes)")


def _npy_header(zf, info, k: str, path) -> tuple:
    """Member `k`'s (shape, bytes its data takes), from its .npy header alone: no data is read.
    Not a .npy array, Python objects or numbers that are not real are a `SpecError`."""
    with zf.open(info) as f:
        try:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, _fortran, dtype = np.lib.format.read_array_header_1_0(f)
            else:
                shape, _fortran, dtype = np.lib.format.read_array_header_2_0(f)
        except ValueError as e:
            raise SpecError(f"cannot load weights from {path}: array '{k}' is not a .npy array "
                            f"({e})") from None
        if dtype.hasobject:
            raise SpecError(f"cannot load weights from {path}: array '{k}' holds Python objects, "
                            "not numbers")
        kind = _kind(np.empty(0, dtype))
        if kind not in ("float", "int"):
            raise SpecError(f"cannot load weights from {path}: array '{k}' holds {kind}, "
                            "not real numbers")
        return tuple(shape), int(np.prod(shape, dtype=object)) * dtype.itemsize


def _check_declared(path, expected: dict, members: dict, shapes: dict, limit) -> None:
    """The members are the spec's parameters, each of the spec's shape and no larger than `limit`."""
    check_loaded_names(expected, members, path)
    for k, (shape, nbytes) in shapes.items():
        if shape != tuple(expected[k][0]):
            raise SpecError(f"{path}: parameter {k} has shape {shape}, "
                            f"the spec says {tuple(expected[k][0])}")
        if nbytes > limit:
            raise SpecError(f"cannot load weights from {path}: array '{k}' declares {nbytes} bytes, "
                            "far more than the spec's parameters need")


def _read_arrays(data: bytes, path) -> dict:
    """Every array of the archive (allow_pickle=False: object arrays are a `SpecError`)."""
    import io

    arrays = {}
    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        for k in z.files:
            try:
                arrays[k] = z[k]
            except ValueError as e:
                if "pickle" in str(e) or "Object arrays" in str(e):
                    raise SpecError(f"cannot load weights from {path}: array '{k}' holds Python objects, "
                                    "not numbers") from None
                raise
    return arrays


def load_npz(path, expected: dict | None = None) -> dict:
    """Named arrays from an .npz file (allow_pickle=False), with a clear `SpecError` for anything else.
    With `expected` (the spec's `PARAMS`), the member names are checked first and each member's
    .npy header (shape, dtype) before any array data is read, so a declared huge array never is."""
    limit = weights_limit(expected) if expected is not None else None
    data = read_weights_file(path, "an .npz file", limit)
    return npz_arrays(data, path, expected, limit)


def npz_arrays(data: bytes, path, expected: dict | None, limit) -> dict:
    """`load_npz` on the bytes of the file `path`."""
    import io
    import zipfile
    import zlib

    _check_npz_magic(path, data)
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            members = {}
            for info in zf.infolist():
                name = info.filename
                members[name[:-4] if name.endswith(".npy") else name] = info
            shapes = {k: _npy_header(zf, info, k, path) for k, info in members.items()}
            if expected is not None:
                _check_declared(path, expected, members, shapes, limit)
            arrays = _read_arrays(data, path)
    except SpecError:
        raise
    except (ValueError, EOFError, OSError, KeyError, zipfile.BadZipFile, zlib.error) as e:
        raise SpecError(f"cannot load weights from {path}: the file is damaged or truncated ({e})") from None
    for k, a in arrays.items():
        kind = _kind(a)
        if kind not in ("float", "int"):
            raise SpecError(f"cannot load weights from {path}: array '{k}' holds {kind}, not real numbers")
    return arrays


# safetensors dtype codes → what they hold, in `_kind`'s words
ST_DTYPES = {**dict.fromkeys(("F64", "F32", "F16", "BF16", "F8_E4M3", "F8_E5M2"), "float"),
             **dict.fromkeys(("I64", "I32", "I16", "I8", "U64", "U32", "U16", "U8"), "int"),
             "BOOL": "booleans", "C64": "complex numbers"}


def safetensors_header(data: bytes, path) -> dict:
    """name → (dtype code, shape) from a safetensors file's JSON header, read before any tensor is:
    a header that is not one is a `SpecError` (damaged or truncated)."""
    import json

    damaged = f"cannot load weights from {path}: the safetensors file is damaged or truncated"
    (n,) = struct.unpack("<Q", data[:8])
    if n > len(data) - 8:
        raise SpecError(f"{damaged} (its header says {n} bytes, and {len(data) - 8} follow)")
    try:
        header = json.loads(data[8:8 + n].decode("utf-8"))
        if not isinstance(header, dict):
            raise ValueError("the header is not a JSON object")
        out = {}
        for name, info in header.items():
            if name != "__metadata__":
                shape = tuple(info["shape"])
                if not isinstance(info["dtype"], str) or not all(type(d) is int and d >= 0 for d in shape):
                    raise ValueError(f"tensor {name!r} has dtype {info['dtype']!r} and shape {list(shape)}")
                out[name] = (info["dtype"], shape)
    except (ValueError, KeyError, TypeError) as e:
        raise SpecError(f"{damaged} ({e})") from None
    return out


def _check_safetensors(path, expected: dict, header: dict) -> None:
    """The tensors a safetensors header declares against the spec's `PARAMS`: the names, then each
    one's dtype (real numbers) and shape, as `check_loaded` checks arrays."""
    check_loaded_names(expected, header, path)
    for k, (code, shape) in header.items():
        kind = ST_DTYPES.get(code, f"values of dtype {code}")
        if kind not in ("float", "int"):
            raise SpecError(f"{path}: parameter {k} holds {kind}; weights are real numbers")
        if shape != tuple(expected[k][0]):
            raise SpecError(f"{path}: parameter {k} has shape {shape}, the spec says {tuple(expected[k][0])}")


def load_weights(path, expected: dict, safetensors_reader) -> dict:
    """name → array of the weights file `path`, .npz or safetensors whichever its first bytes say
    (`weights_format`). An .npz file is read as `load_npz` reads it (allow_pickle=False, the names
    and .npy headers checked before any data); a safetensors file has its header's names, dtypes and
    shapes checked the same way, then is read by the safetensors package: `safetensors_reader(path)`
    → (load(bytes) → dict, the dtype codes it can read, None: all). The caller then checks the
    arrays with `check_loaded`, whichever the format."""
    limit = weights_limit(expected)
    data = read_weights_file(path, WEIGHTS_FILE, limit)
    if weights_format(data, path) == "npz":
        return npz_arrays(data, path, expected, limit)
    header = safetensors_header(data, path)
    _check_safetensors(path, expected, header)
    load, readable = safetensors_reader(path)
    for k, (code, _shape) in header.items():
        if readable is not None and code not in readable:
            raise SpecError(f"cannot load weights from {path}: parameter {k} holds {code} numbers, which NumPy "
                            "has no type for", None, "load them with the torch backend, or save them as float32")
    try:
        return load(data)
    except Exception as e:  # safetensors raises its own error types
        raise SpecError(f"cannot load weights from {path}: the safetensors file is damaged or truncated "
                        f"({type(e).__name__}: {e})") from None


def numpy_safetensors(path) -> tuple:
    """(safetensors.numpy.load, the dtype codes NumPy has a type for) for `load_weights`: the package
    is needed only to read a safetensors file, and torch never."""
    try:
        from safetensors.numpy import load
    except ImportError:
        raise SpecError(f"cannot load weights from {path}: reading a safetensors file needs the safetensors "
                        "package (not torch)", None, "install it with 'pip install safetensors', or save the "
                        "weights as .npz") from None
    return load, {k for k in ST_DTYPES if not k.startswith(("BF", "F8"))}


# ---- the NumPy executable ---------------------------------------------------------------
class NumpyExecutable(Predicting):
    backend = "numpy"
    _loss_ops = NumpyOps

    def __init__(self, source: str, ns: dict, filename: str, symbols: dict | None = None, variants=None):
        self.source = source
        self.filename = filename
        self._ns = ns
        self.variants = Variants(variants, ns["HAS_DROPOUT"], any(p["previous"] for p in ns["PREDICTED"].values()))
        self._stepper_cache = None
        self.kind, self.name, self.sizes = ns["KIND"], ns["NAME"], ns["SIZES"]
        self.param_specs = ns["PARAMS"]
        self.dtype = np.dtype(ns["DTYPE"])
        self.boundary = Boundary(ns, symbols)
        self.params: dict = {}
        self.init_params(0)

    # deepcopy and pickle: the namespace (generated functions, the numpy module) is rebuilt
    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        del state["_ns"]
        state["_stepper_cache"] = None
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._ns = exec_module(self.source, self.filename)

    def __repr__(self) -> str:
        return describe(self, "numpy", self.dtype, {k: tuple(v.shape) for k, v in self.params.items()})

    def init_params(self, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.params = {k: draw(shape, init, rng).astype(self.dtype) for k, (shape, init) in self.param_specs.items()}

    def save(self, path) -> None:
        """Write the parameters to `path` (.npz; the name is kept as given) without ever leaving a
        half-written file in place of the old one."""
        params = {k: np.asarray(v) for k, v in self.params.items()}
        write_file(path, lambda f: np.savez(f, **params), "weights")

    def load(self, path) -> None:
        """Read weights from `path`: .npz (as `save` writes) or safetensors (as the torch module's
        `save` writes), whichever the file's first bytes say; never pickle."""
        arrays = load_weights(path, self.param_specs, numpy_safetensors)
        check_loaded(self.param_specs, arrays, path)
        self.params = {k: v.astype(self.dtype) for k, v in arrays.items()}

    def example_inputs(self, batch: int = 2, steps: int = 5, seed: int = 0) -> dict:
        batch, steps = self.boundary.example_sizes(batch, steps)
        return example_inputs(self._ns, batch, steps, seed, self.boundary.vocab())

    def _cast(self, inputs: dict, state):
        return self.boundary.call(inputs, state, NumpyArrays(self.dtype))

    def _module(self, cast: dict, lengths, training: bool, seed, given=None) -> tuple:
        """(namespace, inputs) for a call: the plain module, or with `lengths`, dropout in
        `training` or a model's run states `given` the variant that takes them, its hidden inputs
        and the given states added (docs/api.md)."""
        seed = self.boundary.seed(training, seed)
        training = training and self.variants.has_dropout
        if lengths is not None:
            lengths = self.boundary.lengths(lengths, cast) or None
        if lengths is None and not training and not given:
            return self._ns, cast
        ns = self.variants.namespace(lengths is not None, training, None, tuple(sorted(given or ())))
        rng = np.random.default_rng(seed)
        unused_lengths(self.name, ns, lengths)
        hidden = hidden_inputs(self.boundary, ns, cast, lengths, numpy_keep(rng, self.dtype))
        return ns, clean_padding(ns, {**cast, **(given or {}), **hidden}, np.where)

    def __call__(self, state=None, lengths=None, training=False, seed=None, **inputs):
        """Inference: `outputs, final = exe(**inputs, state=None, lengths=None)`; keeps no per-step
        history. `lengths`: a sequence input's name → int array (B,) (docs/api.md, "Lengths");
        `training=True`: dropout drops, with masks drawn from `seed` (docs/api.md, "Dropout")."""
        inputs, _observed = self._observed_split(inputs)
        cast, state = self._cast(inputs, state)
        given, state = (state, None) if self.kind == "model" else (None, state)
        ns, cast = self._module(cast, lengths, training, seed, given)
        outputs, final = ns["forward"](self.params, cast, state)
        return zero_padding(ns, outputs, cast, np.where), self._with_last(final, cast, lengths)

    def loss_and_grad(self, state=None, lengths=None, training=False, seed=None, **inputs):
        """(loss, {output: part}, grads): the declared negative log-likelihood of the observed values
        passed beside the inputs, and its gradients by the generated backpropagation through time
        (grads as `value_and_grad`'s)."""
        if not self._predicted():
            return self.loss(**inputs)  # the error that says why
        run, observed = self._observed_split(inputs)
        ns, cast, outputs, final, backward = self._forward_grad(run, state, lengths, training, seed)
        observed = observed_values(self.name, self._predicted(), observed, outputs, np.asarray)
        checked = self.boundary.lengths(lengths, cast) if lengths is not None else None
        total, parts = nll(self._ns, NumpyOps, outputs, observed, checked)
        d_out = nll_grad(self._ns, outputs, observed, checked)
        grads = self._backward(ns, cast, backward, d_out, None, outputs, final)
        return float(total), {k: float(v) for k, v in parts.items()}, grads

    # ---- hooks of step-wise execution (stepping.Stepper) ----------------------------
    def _part_ns(self, part: str, masked: bool) -> dict:
        return self.variants.namespace(masked, False, part)

    def _forward_ns(self, ns: dict, inputs: dict, params=None, check_only=False) -> tuple:
        if check_only:  # (nothing to set up: stepping.Stepper.cached)
            return None
        outputs, final = ns["forward"](self.params if params is None else params, inputs, None)
        return zero_padding(ns, outputs, inputs, np.where), final

    def _arrays(self):
        return NumpyArrays(self.dtype)

    @staticmethod
    def _tensor_in(values: dict, ns: dict) -> dict:
        return values

    @staticmethod
    def _to_numpy(x):
        return np.asarray(x)

    @staticmethod
    def _take(x, index):
        return np.asarray(x)[index]

    def _full(self, shape, value):
        return np.full(shape, value, dtype=self.dtype)

    @staticmethod
    def _tokens(a):
        return np.asarray(a, dtype=np.intp)

    @staticmethod
    def _index(a):
        return np.asarray(a, dtype=np.intp)

    @staticmethod
    def _step_value(x):
        return np.asarray(x)

    @staticmethod
    def _no_grad():
        import contextlib

        return contextlib.nullcontext()

    def value_and_grad(self, inputs: dict, d_outputs: dict, d_final: dict | None = None, state=None, lengths=None,
                       training=False, seed=None):
        """Forward, then backpropagation through time for the output cotangents `d_outputs`
        (and `d_final` for final states): `(outputs, final, grads)` with grads
        {"params": every parameter, "inputs": float inputs, "state": initial states}.
        Cotangents must have exactly the shapes of the outputs they belong to."""
        ns, cast, outputs, final, backward = self._forward_grad(inputs, state, lengths, training, seed)
        return outputs, final, self._backward(ns, cast, backward, d_outputs, d_final, outputs, final, lengths)

    def _forward_grad(self, inputs, state, lengths, training, seed) -> tuple:
        inputs, _observed = self._observed_split(inputs)
        cast, state = self._cast(inputs, state)
        given, state = (state, None) if self.kind == "model" else (None, state)
        ns, cast = self._module(cast, lengths, training, seed, given)  # the same masks forward and backward
        outputs, final, backward = ns["forward_grad"](self.params, cast, state)
        return ns, cast, zero_padding(ns, outputs, cast, np.where), self._with_last(final, cast, lengths), backward

    def _backward(self, ns, cast, backward, d_outputs, d_final, outputs, final, lengths=None) -> dict:
        d_outputs = self.boundary.cotangents("d_outputs", d_outputs, outputs, "output", self.dtype)
        d_outputs = zero_padding(ns, d_outputs, cast, np.where)  # padded outputs are constant zeros
        d_final = self.boundary.cotangents("d_final", d_final, final, "final state", self.dtype)
        lasts = {k[: -len(".last")]: v for k, v in d_final.items() if k.endswith(".last")}
        grads = backward(d_outputs, {k: v for k, v in d_final.items() if not k.endswith(".last")})
        for k, d in lasts.items():  # `<y>.last` is the observed y at each sample's last step
            g = grads["inputs"].get(k)
            if g is not None:
                g = grads["inputs"][k] = np.array(g)
                n = self.boundary.lengths(lengths, cast).get(k) if lengths is not None else None
                g[np.arange(g.shape[0]), -1 if n is None else n - 1] += d
        given = set(self._ns["STATE_SHAPES"]) if self.kind == "model" else set()  # a model's run states given
        grads["state"] = {**grads["state"], **{k: v for k, v in grads["inputs"].items() if k in given}}
        grads["inputs"] = {k: v for k, v in grads["inputs"].items()
                           if k not in ns["MASKS"] and k not in ns["DROPOUTS"] and k not in given}
        grads["params"] = {k: np.asarray(grads["params"].get(k, np.zeros_like(v)), dtype=self.dtype)
                           for k, v in self.params.items()}
        return grads


class Variants:
    """The other generated modules of a definition, each made on first use by `make(masked,
    training) -> (source, filename)`: `masked`, for calls with `lengths=` (`passes.mask_lengths`);
    `training`, for dropout in training (`passes.dropout`). The plain module is neither. They
    pickle as their sources (made first, if need be), never as the closure."""

    def __init__(self, make, has_dropout: bool, steppable: bool = False):
        self.make = make
        self.has_dropout = has_dropout
        self.steppable = steppable
        self.sources: dict = {}  # (masked, training, part) -> (source, filename)
        self._ns: dict = {}

    def namespace(self, masked: bool, training: bool, part: str | None = None, states: tuple = ()) -> dict:
        """`part`: "begin" or "step", the modules of step-wise generation (`passes.split_steps`);
        `states`: a model's run states given to a call (`passes.given_states`)."""
        key = (bool(masked), bool(training), part, tuple(states))
        if key not in self._ns:
            if key not in self.sources:
                if self.make is None:
                    raise SpecError("this executable was unpickled without the module it needs here")
                self.sources[key] = self.make(*key)
            self._ns[key] = exec_module(*self.sources[key])
        return self._ns[key]

    def __getstate__(self) -> dict:
        if self.make is not None:
            keys = [(True, False, None, ())] + ([(False, True, None, ()), (True, True, None, ())]
                                                if self.has_dropout else [])
            if self.steppable:
                keys += [(m, False, part, ()) for part in ("begin", "step") for m in (False, True)]
            for key in keys:
                self.sources.setdefault(key, self.make(*key))
        return {"sources": self.sources, "has_dropout": self.has_dropout, "steppable": self.steppable}

    def __setstate__(self, state: dict) -> None:
        self.make, self._ns = None, {}
        self.sources, self.has_dropout = state["sources"], state["has_dropout"]
        self.steppable = state.get("steppable", False)


def exec_module(source: str, filename: str) -> dict:
    """Compile generated source with a filename registered in linecache (tracebacks show it)."""
    import linecache

    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    ns: dict = {"__name__": filename}
    exec(compile(source, filename, "exec"), ns)  # noqa: S102 — our own generated code
    return ns

"""The executable contract shared by both backends (see docs/api.md).

In:  a generated module's namespace (`PARAMS`, `INPUTS`, `forward`, ...).
Out: `NumpyExecutable`: `.params` (spec name → array), `init_params(seed)`,
     `save(path)` / `load(path)` (.npz, allow_pickle=False, names and shapes checked),
     `example_inputs(batch, steps, seed)`, and `outputs, final = exe(**inputs, state=None)`.
"""

from __future__ import annotations

import numpy as np

from ..errors import SpecError


def draw(shape, init, rng: np.random.Generator) -> np.ndarray:
    kind, scale = init
    if kind == "uniform":
        return rng.uniform(-scale, scale, size=shape)
    if kind == "normal":
        return rng.normal(0.0, scale, size=shape)
    return np.full(shape, scale)


def check_loaded(expected: dict, arrays: dict, path) -> None:
    missing = sorted(set(expected) - set(arrays))
    extra = sorted(set(arrays) - set(expected))
    if missing or extra:
        raise SpecError(f"{path}: parameters do not match the spec"
                        + (f"; missing {', '.join(missing)}" if missing else "")
                        + (f"; unexpected {', '.join(extra)}" if extra else ""))
    for k, (shape, _) in expected.items():
        if tuple(arrays[k].shape) != tuple(shape):
            raise SpecError(f"{path}: parameter {k} has shape {tuple(arrays[k].shape)}, the spec says {tuple(shape)}")


def example_inputs(ns: dict, batch: int, steps: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    out = {}
    for name, (_text, dims, dtype, seq, vocab) in ns["INPUTS"].items():
        if dtype == "int":
            out[name] = rng.integers(0, vocab, size=(batch, steps))
        else:
            shape = (batch,) + ((steps,) if seq else ()) + tuple(dims)
            out[name] = rng.standard_normal(shape).astype(ns["DTYPE"])
    return out


class NumpyExecutable:
    backend = "numpy"

    def __init__(self, source: str, ns: dict, filename: str):
        self.source = source
        self.filename = filename
        self._ns = ns
        self.kind, self.name, self.sizes = ns["KIND"], ns["NAME"], ns["SIZES"]
        self.param_specs = ns["PARAMS"]
        self.dtype = np.dtype(ns["DTYPE"])
        self.params: dict = {}
        self.init_params(0)

    def init_params(self, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.params = {k: draw(shape, init, rng).astype(self.dtype) for k, (shape, init) in self.param_specs.items()}

    def save(self, path) -> None:
        np.savez(path, **self.params)

    def load(self, path) -> None:
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except (OSError, ValueError) as e:
            raise SpecError(f"cannot load weights from {path}: {e}") from None
        check_loaded(self.param_specs, arrays, path)
        self.params = {k: v.astype(self.dtype) for k, v in arrays.items()}

    def example_inputs(self, batch: int = 2, steps: int = 5, seed: int = 0) -> dict:
        return example_inputs(self._ns, batch, steps, seed)

    def _cast(self, inputs: dict, state):
        want = set(self._ns["INPUTS"])
        if set(inputs) != want:
            raise TypeError(f"{self.name} takes inputs {sorted(want)}, got {sorted(inputs)}")
        cast = {k: (np.asarray(v) if self._ns["INPUTS"][k][2] == "int" else np.asarray(v, dtype=self.dtype))
                for k, v in inputs.items()}
        if state:
            unknown = set(state) - set(self._ns["STATE_SHAPES"])
            if unknown:
                raise TypeError(f"{self.name} has no state {sorted(unknown)}; its states: "
                                f"{sorted(self._ns['STATE_SHAPES'])}")
            state = {k: np.asarray(v, dtype=self.dtype) for k, v in state.items()}
        return cast, state

    def __call__(self, state=None, **inputs):
        """Inference: `outputs, final = exe(**inputs, state=None)`; keeps no per-step history."""
        cast, state = self._cast(inputs, state)
        return self._ns["forward"](self.params, cast, state)

    def value_and_grad(self, inputs: dict, d_outputs: dict, d_final: dict | None = None, state=None):
        """Forward, then backpropagation through time for the output cotangents `d_outputs`
        (and `d_final` for final states): `(outputs, final, grads)` with grads
        {"params": every parameter, "inputs": float inputs, "state": initial states}."""
        cast, state = self._cast(inputs, state)
        outputs, final, backward = self._ns["forward_grad"](self.params, cast, state)
        unknown = set(d_outputs) - set(outputs)
        if unknown:
            raise TypeError(f"{self.name} has no output {sorted(unknown)}; its outputs: {sorted(outputs)}")
        d_outputs = {k: np.asarray(v, dtype=self.dtype) for k, v in d_outputs.items()}
        grads = backward(d_outputs, {k: np.asarray(v, dtype=self.dtype) for k, v in (d_final or {}).items()})
        grads["params"] = {k: np.asarray(grads["params"].get(k, np.zeros_like(v)), dtype=self.dtype)
                           for k, v in self.params.items()}
        return outputs, final, grads


def exec_module(source: str, filename: str) -> dict:
    """Compile generated source with a filename registered in linecache (tracebacks show it)."""
    import linecache

    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    ns: dict = {"__name__": filename}
    exec(compile(source, filename, "exec"), ns)  # noqa: S102 — our own generated code
    return ns

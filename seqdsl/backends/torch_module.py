"""The nn.Module wrapper around a generated torch module (see docs/api.md).

In:  generated source, its namespace and filename.
Out: `SeqModule`, an nn.Module whose parameters are nn.Parameters named by the spec
     (instance paths become submodule paths, so `state_dict()` keys are `enc.W_ii`),
     with `init_params(seed)`, `example_inputs(...)`, `save/load` (safetensors) and
     `outputs, final = module(**inputs, state=None)`.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..errors import SpecError
from .runtime import check_loaded, draw, example_inputs


class SeqModule(nn.Module):
    backend = "torch"

    def __init__(self, source: str, ns: dict, filename: str):
        super().__init__()
        self.source, self.filename, self._ns = source, filename, ns
        self.kind, self.name, self.sizes = ns["KIND"], ns["NAME"], ns["SIZES"]
        self.param_specs = ns["PARAMS"]
        dtype = getattr(torch, ns["DTYPE"])
        for full, (shape, _) in self.param_specs.items():
            *path, leaf = full.split(".")
            mod = self
            for part in path:
                if not hasattr(mod, part):
                    mod.add_module(part, nn.Module())
                mod = getattr(mod, part)
            mod.register_parameter(leaf, nn.Parameter(torch.zeros(shape, dtype=dtype)))
        self.init_params(0)

    @property
    def params(self) -> dict:
        return dict(self.named_parameters())

    def init_params(self, seed: int = 0) -> None:
        """Draw every parameter from its declared initializer (same draws as the NumPy backend)."""
        rng = np.random.default_rng(seed)
        with torch.no_grad():
            params = self.params
            for k, (shape, init) in self.param_specs.items():
                params[k].copy_(torch.from_numpy(draw(shape, init, rng)))

    def example_inputs(self, batch: int = 2, steps: int = 5, seed: int = 0) -> dict:
        p = next(self.parameters(), None)
        out = {}
        for k, v in example_inputs(self._ns, batch, steps, seed).items():
            t = torch.from_numpy(np.asarray(v))
            out[k] = t.long() if v.dtype.kind == "i" else t.to(p.dtype if p is not None else torch.float32)
        return out

    def forward(self, state=None, **inputs):
        want = set(self._ns["INPUTS"])
        if set(inputs) != want:
            raise TypeError(f"{self.name} takes inputs {sorted(want)}, got {sorted(inputs)}")
        p = next(self.parameters(), None)
        if p is not None:
            self._ns["_CTX"].update(dtype=p.dtype, device=p.device)
        return self._ns["forward"](self.params, inputs, state)

    def save(self, path) -> None:
        from safetensors.torch import save_file

        save_file({k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}, str(path))

    def load(self, path) -> None:
        from safetensors.torch import load_file

        try:
            tensors = load_file(str(path))
        except Exception as e:  # safetensors raises its own error types
            raise SpecError(f"cannot load weights from {path}: {e}") from None
        check_loaded(self.param_specs, tensors, path)
        self.load_state_dict(tensors)


def make_module(source: str, ns: dict, filename: str) -> SeqModule:
    return SeqModule(source, ns, filename)

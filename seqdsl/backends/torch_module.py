"""The nn.Module wrapper around a generated torch module (see docs/api.md).

In:  generated source, its namespace and filename, and the spec's names for its dims (messages).
Out: `SeqModule`, an nn.Module whose parameters are nn.Parameters named by the spec
     (`state_dict()` keys and `params` are the spec's names, `enc.W_ii`; they are stored in a
     container child under names that cannot clash with nn.Module attributes like `forward`),
     with `init_params(seed)`, `example_inputs(...)`, `save` (safetensors) / `load` (safetensors or
     .npz, by the file's content; `torch.load` is never used) and `outputs, final =
     module(**inputs, state=None)`. Inputs and initial states are checked by `validate.Boundary`
     before generated code or a torch._VF kernel sees them.
     The module's dtype and device are those of a non-persistent buffer set from the compile's
     `DTYPE` and moved by `.to()`, so a module without parameters runs in its dtype too.
     It deep-copies and pickles (the namespace is rebuilt from the source); `print(module)` names
     the spec, kind, sizes and parameter shapes.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..errors import SpecError
from ..files import write_file
from .hidden import clean_padding, hidden_inputs, numpy_keep, unused_lengths, zero_padding
from .loss import TorchOps
from .predicting import Predicting
from .runtime import (
    Variants,
    check_loaded,
    describe,
    draw,
    example_inputs,
    exec_module,
    load_weights,
)
from .validate import Boundary, TorchTensors, UnknownName

_PROBE = "_seqdsl_dtype"  # an empty buffer: the module's dtype and device, moved by .to()
_BOX = "_seqdsl_params"  # the child holding the spec's parameters


def _stored(full: str) -> str:
    """The name a spec parameter is registered under in the container: never an attribute name."""
    return "p:" + full.replace(".", ":")


def _state_dict_spec_names(module, state_dict, prefix, local_metadata) -> None:
    """state_dict() keys are the spec's names: `_seqdsl_params.p:enc:W_ii` becomes `enc.W_ii`."""
    for full in module.param_specs:
        key = f"{prefix}{_BOX}.{_stored(full)}"
        if key in state_dict:
            state_dict[prefix + full] = state_dict.pop(key)


def _load_spec_names(module, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                     error_msgs) -> None:
    """load_state_dict() takes the spec's names (`enc.W_ii`) and stores them in the container."""
    for full in module.param_specs:
        key = prefix + full
        if key in state_dict:
            state_dict[f"{prefix}{_BOX}.{_stored(full)}"] = state_dict.pop(key)


def _safetensors():
    try:
        import safetensors.torch as st
    except ImportError:
        raise SpecError("saving and loading the weights of a torch module needs the safetensors package", None,
                        "install it with 'pip install safetensors' (or pip install 'seqdsl[torch]')") from None
    return st


class SeqModule(Predicting, nn.Module):
    backend = "torch"
    _loss_ops = TorchOps

    def __init__(self, source: str, ns: dict, filename: str, symbols: dict | None = None, variants=None):
        super().__init__()
        self.source, self.filename, self._ns = source, filename, ns
        self.variants = Variants(variants, ns["HAS_DROPOUT"], any(p["previous"] for p in ns["PREDICTED"].values()))
        self._stepper_cache = None
        self.kind, self.name, self.sizes = ns["KIND"], ns["NAME"], ns["SIZES"]
        self.param_specs = ns["PARAMS"]
        self.boundary = Boundary(ns, symbols)
        dtype = getattr(torch, ns["DTYPE"])
        self.register_buffer(_PROBE, torch.zeros(0, dtype=dtype), persistent=False)
        # The spec's parameters live in a container child under names no nn.Module attribute can
        # take ("p:enc:W_ii"), so a parameter or instance named `forward`, `to` or `params` cannot
        # clash; hooks give state_dict() and load_state_dict() the spec's names ("enc.W_ii").
        box = nn.Module()
        for full, (shape, _) in self.param_specs.items():
            box.register_parameter(_stored(full), nn.Parameter(torch.zeros(shape, dtype=dtype)))
        self.add_module(_BOX, box)
        self._register_state_dict_hook(_state_dict_spec_names)
        self._register_load_state_dict_pre_hook(_load_spec_names, with_module=True)
        self.init_params(0)

    # deepcopy and pickle: the namespace (generated functions, the torch module) is rebuilt
    def __getstate__(self) -> dict:
        state = super().__getstate__()
        state.pop("_ns", None)
        state["_stepper_cache"] = None
        return state

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        self._ns = exec_module(self.source, self.filename)

    def __repr__(self) -> str:
        fused = ", fused" if "torch._VF." in self.source else ""
        return describe(self, "torch", self.dtype, {k: tuple(v.shape) for k, v in self.params.items()},
                        f", device={self.device}{fused}")

    @property
    def dtype(self) -> torch.dtype:
        """The dtype the module computes in: the compile's `dtype`, or what `.to()` made of it."""
        return getattr(self, _PROBE).dtype

    @property
    def device(self) -> torch.device:
        return getattr(self, _PROBE).device

    @property
    def params(self) -> dict:
        """Spec name → nn.Parameter (`enc.W_ii`)."""
        box = getattr(self, _BOX)._parameters
        return {full: box[_stored(full)] for full in self.param_specs}

    def init_params(self, seed: int = 0) -> None:
        """Draw every parameter from its declared initializer (same draws as the NumPy backend)."""
        rng = np.random.default_rng(seed)
        with torch.no_grad():
            params = self.params
            for k, (shape, init) in self.param_specs.items():
                params[k].copy_(torch.from_numpy(draw(shape, init, rng)))

    def example_inputs(self, batch: int = 2, steps: int = 5, seed: int = 0) -> dict:
        batch, steps = self.boundary.example_sizes(batch, steps)
        out = {}
        for k, v in example_inputs(self._ns, batch, steps, seed, self.boundary.vocab()).items():
            t = torch.from_numpy(np.asarray(v))
            out[k] = (t.long() if v.dtype.kind == "i" else t.to(self.dtype)).to(self.device)
        return out

    def forward(self, state=None, lengths=None, seed=None, **inputs):
        """`outputs, final = module(**inputs, state=None, lengths=None, seed=None)`; `lengths`: a
        sequence input's name → int tensor or array (B,) (docs/api.md, "Lengths"). In training mode
        (`module.train()`, torch's default) dropout drops, with masks from torch's generator, or
        from `seed` as the NumPy executable draws them (docs/api.md, "Dropout")."""
        if "training" in inputs:
            raise UnknownName(f"{self.name}: a torch module takes no training=; call module.train() or "
                              "module.eval() (dropout drops in training mode, torch's default)")
        inputs, _observed = self._observed_split(inputs)
        inputs, state = self.boundary.call(inputs, state, TorchTensors(self.dtype, self.device))
        self.boundary.seed(self.training, seed)
        ns = self._ns
        training = self.training and self.variants.has_dropout
        given, state = (state, None) if self.kind == "model" else (None, state)
        if lengths is not None:
            lengths = self.boundary.lengths(lengths, inputs) or None
        if lengths is not None or training or given:
            ns = self.variants.namespace(lengths is not None, training, None, tuple(sorted(given or ())))
            unused_lengths(self.name, ns, lengths)
            hidden = hidden_inputs(self.boundary, ns, inputs, lengths, self._keep(seed))
            inputs = {**inputs, **(given or {}), **{k: self._tensor(v, torch.bool if k in ns["MASKS"] else self.dtype)
                                                    for k, v in hidden.items()}}
            inputs = clean_padding(ns, inputs, torch.where)
        ns["_CTX"].update(dtype=self.dtype, device=self.device)
        outputs, final = ns["forward"](self.params, inputs, state)
        return zero_padding(ns, outputs, inputs, torch.where), self._with_last(final, inputs, lengths)

    # ---- hooks of step-wise execution (stepping.Stepper) ----------------------------
    def _part_ns(self, part: str, masked: bool) -> dict:
        return self.variants.namespace(masked, False, part)

    def _forward_ns(self, ns: dict, inputs: dict, params=None, check_only=False) -> tuple:
        ns["_CTX"].update(dtype=self.dtype, device=self.device)
        if check_only:  # (only the context set: stepping.Stepper.cached)
            return None
        outputs, final = ns["forward"](self.params if params is None else params, inputs, None)
        return zero_padding(ns, outputs, inputs, torch.where), final

    def _arrays(self):
        return TorchTensors(self.dtype, self.device)

    def _tensor_in(self, values: dict, ns: dict) -> dict:
        return {k: self._tensor(v, torch.bool if k in ns["MASKS"] else self.dtype) for k, v in values.items()}

    @staticmethod
    def _to_numpy(x):
        return x.detach().cpu().numpy() if torch.is_tensor(x) else np.asarray(x)

    def _take(self, x, index):
        if not torch.is_tensor(x):
            return np.asarray(x)[index]
        return x.index_select(0, torch.as_tensor(index, dtype=torch.long, device=x.device))

    def _full(self, shape, value):
        return torch.full(shape, value, dtype=self.dtype, device=self.device)

    def _tokens(self, a):
        return a if torch.is_tensor(a) else torch.as_tensor(np.asarray(a), dtype=torch.long, device=self.device)

    def _index(self, a):
        return torch.as_tensor(np.asarray(a), dtype=torch.long, device=self.device)

    def _step_value(self, x):
        """A step's value given to step() (ids (B,), or (B, D)) as a tensor."""
        if not torch.is_tensor(x):
            a = np.asarray(x)
            x = torch.as_tensor(a, dtype=torch.long if a.dtype.kind in "iub" else self.dtype, device=self.device)
        return x

    @staticmethod
    def _no_grad():
        return torch.no_grad()

    def _tensor(self, v, dtype):
        """A hidden input on the module's device (a NumPy mask copied when read-only or strided)."""
        return torch.as_tensor(v if torch.is_tensor(v) else np.require(v, requirements=["C", "W"]),
                               dtype=dtype, device=self.device)

    def _keep(self, seed):
        """draw(shape, p) for dropout masks: torch's generator on the module's device, or NumPy's
        from `seed` (the same masks as `exe(training=True, seed=seed)`)."""
        if seed is not None:
            return numpy_keep(np.random.default_rng(seed), np.float64)
        return lambda shape, p: (torch.rand(shape, device=self.device) >= p).to(self.dtype) / (1.0 - p)

    def save(self, path) -> None:
        """Write the weights to `path` (safetensors; the name is kept as given), atomically."""
        st = _safetensors()
        data = st.save({k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()})
        write_file(path, lambda f: f.write(data), "weights")

    def load(self, path) -> None:
        """Read weights from `path`: safetensors (as `save` writes) or .npz (as the NumPy executable's
        `save` writes, allow_pickle=False), whichever the file's first bytes say; never pickle."""
        arrays = load_weights(path, self.param_specs, lambda _path: (_safetensors().load, None))
        check_loaded(self.param_specs, arrays, path)
        self.load_state_dict({k: (torch.from_numpy(v.astype(v.dtype.newbyteorder("=")))  # .npz: a native copy
                                  if isinstance(v, np.ndarray) else v).to(self.dtype) for k, v in arrays.items()})


def make_module(source: str, ns: dict, filename: str, symbols: dict | None = None, variants=None) -> SeqModule:
    return SeqModule(source, ns, filename, symbols, variants)

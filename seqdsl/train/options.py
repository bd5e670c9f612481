"""The options of a training run, checked before anything runs.

In:  the keyword arguments of `seqdsl.train(...)` (the CLI's flags arrive the same way).
Out: `Options` (a frozen dataclass, every value checked and normalised; a mistake is a `SpecError`
     that names the option), `fingerprint(opts)` → the options a resumed run must share with
     the run it continues, `resume_problems(saved, opts)` → what differs, as messages, and
     `check_device(device, flag)`: a device torch cannot train on here (not a device, CUDA without
     CUDA, a GPU index past the last, `meta`) is a one-line `SpecError` naming the flag (`--device`
     on the command line, `device` from Python) and the devices there are, before anything runs.
     torch is imported only to check the device of the torch backend (and not at all without it).
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field

from ..errors import SpecError

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("cosine", "plateau")
BACKENDS = ("torch", "numpy")
DTYPES = ("float32", "float64")
TOKENS = ("chars", "words")
DEFAULT_EPOCHS = 10
DEFAULT_CHECKPOINT_EVERY = 200
# what a resumed run must share with the run it continues: everything that decides its numbers
SAME_ON_RESUME = ("spec", "name", "data", "valid", "batch", "lr", "optimizer", "clip", "schedule", "warmup", "seed",
                  "backend", "dtype", "fused", "sizes", "tokens", "mapping", "seq_len", "max_len", "weight_decay")


@dataclass(frozen=True)
class Options:
    spec: str
    data: str
    out: str
    name: str | None = None
    valid: str | None = None
    epochs: int | None = None
    steps: int | None = None
    batch: int = 32
    lr: float = 1e-3
    optimizer: str = "adam"
    clip: float | None = None
    schedule: str | None = None
    warmup: int = 0
    seed: int = 0
    resume: bool = False
    backend: str = "torch"
    device: str = "cpu"
    sizes: dict = field(default_factory=dict)
    tokens: str = "chars"
    mapping: dict = field(default_factory=dict)
    patience: int | None = None
    seq_len: int | None = None
    max_len: int | None = None
    progress: bool = True
    dtype: str = "float32"
    checkpoint_every: int = DEFAULT_CHECKPOINT_EVERY
    weight_decay: float | None = None
    fused: bool = True


def _whole(name: str, value, low: int, none_ok: bool = True):
    if value is None and none_ok:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise SpecError(f"{name} must be a whole number >= {low}, got {value!r}")
    return value


def _number(name: str, value, positive: bool = True, none_ok: bool = True):
    if value is None and none_ok:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or (value <= 0 if positive else value < 0):
        raise SpecError(f"{name} must be a finite number {'> 0' if positive else '>= 0'}, got {value!r}")
    return float(value)


def _choice(name: str, value, choices, none_ok: bool = False):
    if value is None and none_ok:
        return None
    if value not in choices:
        raise SpecError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def _path(name: str, value, none_ok: bool = False):
    if value is None and none_ok:
        return None
    if value is None:
        raise SpecError(f"{name} is required")
    try:
        return os.fspath(value)
    except TypeError:
        raise SpecError(f"{name} must be a path, got {type(value).__name__}") from None


def _names(name: str, value, kind: type) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, kind) and not isinstance(v, bool)
                                              for k, v in value.items()):
        raise SpecError(f"{name} must be a dict name → {kind.__name__}, got {value!r}")
    return dict(value)


def make(**kw) -> Options:
    """Options from `seqdsl.train`'s keywords, each checked."""
    if kw.get("epochs") is not None and kw.get("steps") is not None:
        raise SpecError("give epochs or steps, not both", None, "--epochs N trains N passes over the data, "
                        "--steps N that many batches")
    o = dict(kw)
    o["spec"], o["data"], o["out"] = _path("spec", o["spec"]), _path("data", o["data"]), _path("out", o["out"])
    o["valid"] = _path("valid", o.get("valid"), none_ok=True)
    for k in ("epochs", "steps", "patience", "seq_len", "max_len"):
        o[k] = _whole(k, o.get(k), 1)
    if o["epochs"] is None and o["steps"] is None:
        o["epochs"] = DEFAULT_EPOCHS
    o["batch"] = _whole("batch", o.get("batch", 32), 1, none_ok=False)
    o["warmup"] = _whole("warmup", o.get("warmup", 0), 0, none_ok=False)
    o["seed"] = _whole("seed", o.get("seed", 0), 0, none_ok=False)
    o["checkpoint_every"] = _whole("checkpoint_every", o.get("checkpoint_every") or DEFAULT_CHECKPOINT_EVERY, 1)
    o["lr"] = _number("lr", o.get("lr", 1e-3), none_ok=False)
    o["clip"] = _number("clip", o.get("clip"))
    o["weight_decay"] = _number("weight_decay", o.get("weight_decay"), positive=False)
    o["optimizer"] = _choice("optimizer", o.get("optimizer", "adam"), OPTIMIZERS)
    o["schedule"] = _choice("schedule", None if o.get("schedule") in (None, "none") else o["schedule"], SCHEDULES,
                            none_ok=True)
    o["backend"] = _choice("backend", o.get("backend", "torch"), BACKENDS)
    o["dtype"] = _choice("dtype", o.get("dtype", "float32"), DTYPES)
    o["tokens"] = _choice("tokens", o.get("tokens", "chars"), TOKENS)
    o["sizes"], o["mapping"] = _names("sizes", o.get("sizes"), int), _names("mapping", o.get("mapping"), str)
    if not isinstance(o.get("device", "cpu"), str) or not o.get("device", "cpu"):
        raise SpecError(f"device must be a string such as 'cpu' or 'cuda', got {o['device']!r}")
    if o["backend"] == "numpy" and o.get("device", "cpu") != "cpu":
        raise SpecError(f"the numpy backend runs on the CPU only, not on device {o['device']!r}")
    if o["backend"] == "torch":
        check_device(o.get("device", "cpu"), "device")
    for k in ("resume", "progress", "fused"):
        if k in o and not isinstance(o[k], bool):
            raise SpecError(f"{k} must be True or False, got {o[k]!r}")
    if o["valid"] is None and (o["patience"] is not None or o["schedule"] == "plateau"):
        what = "patience (early stopping)" if o["patience"] is not None else "schedule='plateau'"
        raise SpecError(f"{what} watches the validation loss: give a validation set (valid=FILE, --valid FILE)")
    o["device"] = o.get("device", "cpu")
    return Options(**o)


# the device types seqdsl trains on, and how torch says whether this machine has one
COMPUTE = {"cpu": None, "cuda": "torch.cuda.is_available()", "mps": "torch.backends.mps.is_available()",
           "xpu": "torch.xpu.is_available()"}


def _backend_of(torch, kind: str):
    """torch's module for a device type (torch.cuda, torch.backends.mps, torch.xpu), or None."""
    return getattr(torch.backends, "mps", None) if kind == "mps" else getattr(torch, kind, None)


def _usable(torch, kind: str) -> int:
    """How many devices of type `kind` torch can compute on here (the CPU: 1)."""
    if kind == "cpu":
        return 1
    module = _backend_of(torch, kind)
    try:
        if module is None or not module.is_available():
            return 0
        count = getattr(module, "device_count", None)
        return int(count()) if count is not None else 1
    except (RuntimeError, AssertionError):  # a torch built without the backend may say so by raising
        return 0


def _available(torch) -> list:
    """The devices to suggest: cpu, then cuda:0, cuda:1, ... (mps, xpu) as this machine has them."""
    out = ["cpu"]
    for kind in ("cuda", "mps", "xpu"):
        n = _usable(torch, kind)
        out += [kind] if n == 1 and kind == "mps" else [f"{kind}:{i}" for i in range(n)]
    return out


def _device_problem(torch, device: str) -> str | None:
    """Why torch cannot train on `device` here, or None."""
    try:
        d = torch.device(device)
    except (RuntimeError, ValueError, TypeError):
        return "not a device torch knows (devices are written cpu, cuda, cuda:N, mps)"
    if d.type == "meta":
        return "a meta tensor has a shape but no data, so nothing can be trained on it"
    if d.type not in COMPUTE:
        return f"seqdsl trains on {', '.join(list(COMPUTE)[:-1])} or {list(COMPUTE)[-1]}, not on {d.type} devices"
    n = _usable(torch, d.type)
    if n == 0:
        if d.type == "cuda" and not torch.backends.cuda.is_built():
            return f"this torch has no CUDA ({COMPUTE['cuda']} is False: it was built without CUDA)"
        return f"this machine has no {d.type.upper()} device for torch ({COMPUTE[d.type]} is False)"
    if d.index is not None and d.type != "cpu" and d.index >= n:
        return (f"there {'is' if n == 1 else 'are'} {n} {d.type.upper()} device{'s' if n != 1 else ''} here "
                f"({d.type}:0{f' to {d.type}:{n - 1}' if n > 1 else ''})")
    return None


def check_device(device: str, flag: str = "device") -> str:
    """`device` when the torch backend can train on it on this machine; else a one-line `SpecError`
    that names `flag` ("--device" or "device") and the devices there are. Without torch, nothing is
    checked here (the torch backend's own error says to install it)."""
    try:
        import torch
    except ImportError:
        return device
    problem = _device_problem(torch, device)
    if problem is None:
        return device
    if flag.startswith("--"):
        given, use = f"{flag} {device or repr(device)}", " or ".join(f"{flag} {a}" for a in _available(torch))
    else:
        given, use = f"{flag}={device!r}", " or ".join(f"{flag}={a!r}" for a in _available(torch))
    raise SpecError(f"{given}: {problem}; use {use}")


def fingerprint(opts: Options) -> dict:
    """The options that decide a run's numbers, as JSON (paths made absolute)."""
    d = asdict(opts)
    out = {k: d[k] for k in SAME_ON_RESUME}
    for k in ("spec", "data", "valid"):
        if out[k] is not None:
            out[k] = os.path.abspath(out[k])
    return out


def resume_problems(saved: dict, opts: Options) -> list:
    """What differs between the run in a checkpoint and these options (empty: it can continue)."""
    now = fingerprint(opts)
    return [f"{k} was {saved.get(k)!r}, now {now[k]!r}" for k in SAME_ON_RESUME if saved.get(k) != now[k]]

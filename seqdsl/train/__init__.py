"""Training: `seqdsl.train(spec, data=..., out=DIR, ...)` and `seqdsl train` (docs/train.md).

In:  a spec, a data file (read by `seqdsl.data`), a run directory and options.
Out: `train(...)` → the run's summary (a dict), with the run's files in DIR. The modules:
     `loop` (the run), `options` (checking them), `prepare` (data, vocabulary sizes, compiling),
     `torch_engine` / `numpy_engine` (a step, validation, state), `numpy_optim` (Adam, AdamW, SGD,
     clipping in NumPy), `schedule` (warmup, cosine, plateau), `checkpoint` (the pickle-free
     safetensors checkpoint), `metrics` (validation metrics, metrics.jsonl), `plot` (loss.png),
     `progress` (the bar), `report` (the summary), `faults` (fault injection for the tests).

This module object is callable: `seqdsl.train(...)` is `seqdsl.train.train(...)` whether or not
`seqdsl.train` was imported as a package first (importing a submodule binds the package to the
name `train` on `seqdsl`). Importing it imports neither torch, tqdm nor matplotlib.
"""

from __future__ import annotations

import sys
import types

from .loop import train


class _CallableModule(types.ModuleType):
    def __call__(self, *args, **kwargs):
        return train(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule

__all__ = ["train"]

"""One training step, a validation batch and the checkpointed state, for a NumPy executable: gradient
descent with nothing hidden (the generated backpropagation through time and `numpy_optim`).

In:  a compiled NumPy executable, the run's `Options`, and batches (`b.inputs`, `b.lengths`).
Out: `NumpyEngine`, with the interface of `torch_engine.TorchEngine`: `step(batch, lr, seed)` →
     (loss, grad norm), `evaluate(batch)`, `state()` / `load(tensors, state)`, `save_weights(path)`
     (.npz, atomic).

A step is `exe.loss_and_grad(**inputs, lengths=..., training=True, seed=seed)` (dropout masks
drawn from `seed`), the gradient norm clipped as torch clips it, and the optimizer's update with
torch's formulas at the learning rate `schedule.Schedule` gives the step.
"""

from __future__ import annotations

import math

import numpy as np

from . import numpy_optim


class NumpyEngine:
    backend = "numpy"
    weights_name = "weights.npz"

    def __init__(self, exe, opts):
        self.exe, self.opts = exe, opts
        wd = numpy_optim.DEFAULT_DECAY[opts.optimizer] if opts.weight_decay is None else opts.weight_decay
        self.optimizer = numpy_optim.make(opts.optimizer, exe.params, opts.lr, wd)

    def lengths(self, batch) -> dict | None:
        """The batch's lengths of the sequences the model reads (an observed output that is not also
        an input has the lengths of the sequence its time axis follows)."""
        return {k: v for k, v in batch.lengths.items() if k in self.exe._ns["INPUTS"]} or None

    def step(self, batch, lr: float, seed: int) -> tuple:
        with np.errstate(over="ignore", invalid="ignore"):  # a non-finite loss or gradient stops the run
            loss, _parts, grads = self.exe.loss_and_grad(**batch.inputs, lengths=self.lengths(batch), training=True,
                                                         seed=seed)
        if not math.isfinite(loss):
            return loss, math.nan
        g = {k: np.array(v, dtype=self.exe.dtype) for k, v in grads["params"].items()}
        if self.opts.clip is not None:
            norm = numpy_optim.clip(list(g.values()), self.opts.clip)
        else:
            norm = numpy_optim.total_norm(g.values())
        if math.isfinite(norm):
            self.optimizer.lr = lr
            self.optimizer.step(g)
        return loss, norm

    def evaluate(self, batch) -> tuple:
        outputs, _ = self.exe(**batch.inputs, lengths=self.lengths(batch))
        _, parts = self.exe.loss(**batch.inputs, lengths=self.lengths(batch), parts=True)
        return {k: np.asarray(v) for k, v in outputs.items()}, {k: float(v) for k, v in parts.items()}

    def weights(self) -> dict:
        return {k: np.array(v) for k, v in self.exe.params.items()}

    def state(self) -> tuple:
        tensors = {f"model/{k}": v for k, v in self.weights().items()}
        opt_tensors, opt_state = self.optimizer.state()
        tensors.update({f"optim/{k}": np.array(v) for k, v in opt_tensors.items()})
        return tensors, {"optimizer": opt_state}

    def load(self, tensors: dict, state: dict) -> None:
        for k, p in self.exe.params.items():
            p[...] = tensors[f"model/{k}"]
        self.optimizer.load({k[len("optim/"):]: v for k, v in tensors.items() if k.startswith("optim/")},
                            state["optimizer"])

    def seed(self, seed: int) -> None:
        """Seed the backend's own global generator (torch's; NumPy's is seeded by the loop)."""
        pass

    def close(self) -> None:
        """Leave the process group of several processes (torch), if any."""
        pass

    def save_weights(self, path) -> None:
        self.exe.save(path)

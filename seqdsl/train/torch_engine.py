"""One training step, a validation batch and the checkpointed state, for a torch module.

In:  a compiled torch module (`seqdsl.compile(..., backend="torch")`), the run's `Options`, and
     batches (`b.inputs`: name → padded NumPy array, `b.lengths`: name → (B,) int64).
Out: `TorchEngine` with `step(batch, lr, seed)` → (loss, grad norm) (the update is skipped when
     either is not finite), `evaluate(batch)` → (outputs as NumPy arrays, {output: loss part}),
     `state()` → (tensors name → NumPy array, JSON-able dict) and `load(tensors, state)`,
     `save_weights(path)` (safetensors, atomic).

The optimizer is torch.optim's (Adam, AdamW, SGD with momentum 0.9), the gradient norm is clipped
with torch.nn.utils.clip_grad_norm_, and the learning rate of each step is set on the parameter
groups from `schedule.Schedule` (the same numbers as the NumPy backend). The module is in
`train()` mode for steps, `eval()` under no_grad for validation; dropout masks come from `seed`
(`module(seed=...)`: NumPy masks from that seed), so they are part of the run's saved state.
The optimizer's state_dict is flattened into tensors ("optim/<param>/<key>") and JSON (the
parameter groups, any non-tensor entry): no pickle.

Under torchrun (WORLD_SIZE > 1) the module runs through DistributedDataParallel (gloo on the CPU,
NCCL on CUDA), each process on its share of the global batch (`Batches(..., rank, world)`); the
loss each process backpropagates is weighed by its share of the real positions, so N processes
with batch B take the steps one process takes with batch N·B.
"""

from __future__ import annotations

import math

import numpy as np

from . import dist
from .numpy_optim import MOMENTUM


class TorchEngine:
    backend = "torch"
    weights_name = "weights.safetensors"

    def __init__(self, exe, opts):
        import torch

        self.torch, self.opts = torch, opts
        self.rank, self.world = dist.rank_and_world()
        self.device = dist.start(torch, opts.device) if self.world > 1 else opts.device
        self.exe = exe.to(self.device)
        self.names = list(self.exe.params)
        self.params = [self.exe.params[k] for k in self.names]
        self.ddp = None
        if self.world > 1:
            from torch.nn.parallel import DistributedDataParallel

            cuda = str(self.device).startswith("cuda")
            self.ddp = DistributedDataParallel(self.exe, device_ids=[self.device] if cuda else None)
        self.optimizer = make_optimizer(torch, self.params, opts)

    def tensors(self, arrays: dict) -> dict:
        torch, out = self.torch, {}
        for k, a in arrays.items():
            a = np.asarray(a)
            dtype = torch.long if a.dtype.kind in "iub" else self.exe.dtype
            out[k] = torch.as_tensor(a, dtype=dtype, device=self.device)
        return out

    def lengths(self, batch) -> dict | None:
        """The batch's lengths of the sequences the model reads (an observed output that is not also
        an input has the lengths of the sequence its time axis follows)."""
        return {k: v for k, v in batch.lengths.items() if k in self.exe._ns["INPUTS"]} or None

    def step(self, batch, lr: float, seed: int) -> tuple:
        torch = self.torch
        self.exe.train()
        for g in self.optimizer.param_groups:
            g["lr"] = lr
        self.optimizer.zero_grad(set_to_none=True)
        inputs = self.tensors(batch.inputs)
        if self.ddp is None:
            loss = self.exe.loss(**inputs, lengths=self.lengths(batch), seed=seed)
            value = float(loss.detach())
        else:
            loss, value = self._ddp_loss(batch, inputs, seed)
        if not math.isfinite(value):
            return value, math.nan
        loss.backward()
        grads = [p.grad for p in self.params if p.grad is not None]
        if self.opts.clip is not None:
            norm = float(torch.nn.utils.clip_grad_norm_(self.params, self.opts.clip))
        else:
            norm = float(torch.nn.utils.get_total_norm(grads)) if grads else 0.0
        if math.isfinite(norm):
            self.optimizer.step()
        return value, norm

    def _ddp_loss(self, batch, inputs: dict, seed: int) -> tuple:
        """(this process's loss to backpropagate, the loss of the whole global batch): the module runs
        through DistributedDataParallel (which averages the gradients over the processes), and each
        output's part is weighed by this process's share of the global batch's real positions, so the
        gradient is that of the loss of the global batch, as one process with all of it computes it."""
        from ..backends.loss import TorchOps, nll, observed_values

        exe, torch, lengths = self.exe, self.torch, self.lengths(batch)
        predicted = exe._ns["PREDICTED"]
        outputs, _ = self.ddp(**inputs, lengths=lengths, seed=seed)
        observed = observed_values(exe.name, predicted, {k: inputs[k] for k in predicted}, outputs,
                                   lambda x: x.detach().cpu().numpy())
        run = {k: v for k, v in inputs.items() if k in exe._ns["INPUTS"]}
        _, parts = nll(exe._ns, TorchOps, outputs, observed, exe.boundary.lengths(lengths, run) if lengths else None)
        counts = [positions(batch, k, p) for k, p in predicted.items()]
        totals = dist.all_sum(torch, counts, self.device)
        weighted = sum(parts[k] * (n / total) for k, n, total in zip(predicted, counts, totals))
        value = dist.all_sum(torch, [float(weighted.detach())], self.device)[0]
        return weighted * self.world, value

    def evaluate(self, batch) -> tuple:
        self.exe.eval()
        with self.torch.no_grad():
            inputs = self.tensors(batch.inputs)
            outputs, _ = self.exe(**inputs, lengths=self.lengths(batch))
            _, parts = self.exe.loss(**inputs, lengths=self.lengths(batch), parts=True)
        return ({k: v.detach().cpu().numpy() for k, v in outputs.items()},
                {k: float(v) for k, v in parts.items()})

    def weights(self) -> dict:
        return {k: p.detach().cpu().numpy().copy() for k, p in zip(self.names, self.params)}

    def state(self) -> tuple:
        torch = self.torch
        tensors = {f"model/{k}": v for k, v in self.weights().items()}
        sd = self.optimizer.state_dict()
        scalars = {}
        for idx, st in sd["state"].items():
            for key, v in st.items():
                if torch.is_tensor(v):
                    tensors[f"optim/{self.names[idx]}/{key}"] = v.detach().cpu().numpy().copy()
                else:
                    scalars[f"{self.names[idx]}/{key}"] = v
        groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()} for g in sd["param_groups"]]
        tensors["rng/torch"] = torch.get_rng_state().numpy().copy()
        return tensors, {"param_groups": groups, "scalars": scalars}

    def load(self, tensors: dict, state: dict) -> None:
        torch = self.torch
        with torch.no_grad():
            for k, p in zip(self.names, self.params):
                p.copy_(torch.from_numpy(tensors[f"model/{k}"].copy()))
        per: dict = {}
        for key, v in tensors.items():
            if key.startswith("optim/"):
                name, _, entry = key[len("optim/"):].rpartition("/")
                per.setdefault(self.names.index(name), {})[entry] = torch.from_numpy(v.copy())
        for key, v in state["scalars"].items():
            name, _, entry = key.rpartition("/")
            per.setdefault(self.names.index(name), {})[entry] = v
        fresh = self.optimizer.state_dict()["param_groups"]
        groups = [{k: (tuple(v) if isinstance(f.get(k), tuple) else v) for k, v in g.items()}
                  for g, f in zip(state["param_groups"], fresh)]
        self.optimizer.load_state_dict({"state": per, "param_groups": groups})
        torch.set_rng_state(torch.from_numpy(tensors["rng/torch"].copy()))

    def seed(self, seed: int) -> None:
        """Seed the backend's own global generator (torch's; NumPy's is seeded by the loop)."""
        self.torch.manual_seed(seed)

    def close(self) -> None:
        """Leave the process group of several processes (torch), if any."""
        if self.world > 1:
            dist.stop(self.torch)

    def save_weights(self, path) -> None:
        self.exe.save(path)


def positions(batch, name: str, p: dict) -> int:
    """The real positions of predicted output `name` in a batch (its observed sequence's lengths)."""
    if not p["per_step"]:
        return int(batch.size)
    n = batch.lengths.get(name)
    return int(np.sum(n)) if n is not None else int(np.prod(np.shape(batch.inputs[name])[:2]))


def make_optimizer(torch, params: list, opts):
    from .numpy_optim import DEFAULT_DECAY

    wd = DEFAULT_DECAY[opts.optimizer] if opts.weight_decay is None else opts.weight_decay
    if opts.optimizer == "sgd":
        return torch.optim.SGD(params, lr=opts.lr, momentum=MOMENTUM, weight_decay=wd)
    cls = torch.optim.AdamW if opts.optimizer == "adamw" else torch.optim.Adam
    return cls(params, lr=opts.lr, weight_decay=wd)

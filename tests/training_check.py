"""Dropout in training, for any definition: NumPy's generated BPTT and torch's autograd, given the
same masks (the same `seed`), agree on outputs, final states and parameter gradients (float64,
1e-10 absolute + 1e-12 relative), torch fused and not; and calling with the seed again gives the
same values (the masks follow the seed)."""

from __future__ import annotations

import numpy as np
from lengths_check import close, jitter

import seqdsl
from seqdsl.program import Program


def check_training(source, name=None, batch: int = 2, steps: int = 4, seed: int = 0) -> None:
    import torch

    if not isinstance(source, Program):
        source = seqdsl.load(source)  # loaded once, compiled three times
    exe = seqdsl.compile(source, name=name, dtype="float64")
    exe.init_params(seed)
    rng = np.random.default_rng(seed)
    jitter(exe, rng)
    inputs = exe.example_inputs(batch=batch, steps=steps, seed=seed + 1)
    outs, final, _ = exe.value_and_grad(inputs, {}, training=True, seed=seed)
    again, _ = exe(**inputs, training=True, seed=seed)
    for k, v in outs.items():
        assert np.array_equal(v, again[k]), f"output {k}: another call with the same seed differs"
    d_outs = {k: rng.normal(size=np.shape(v)) for k, v in outs.items()}
    d_final = {k: rng.normal(size=np.shape(v)) for k, v in final.items()}
    _, _, grads = exe.value_and_grad(inputs, d_outs, d_final, training=True, seed=seed)
    for fused in (True, False):
        mod = seqdsl.compile(source, name=name, backend="torch", dtype="float64", fused=fused)
        with torch.no_grad():
            for k, v in mod.params.items():
                v.copy_(torch.from_numpy(np.asarray(exe.params[k])))
        t_outs, t_final = mod(**{k: torch.as_tensor(np.asarray(v)) for k, v in inputs.items()}, seed=seed)
        label = f"torch {'fused' if fused else 'loop'} in training: "
        for k, v in outs.items():
            close(f"{label}output {k}", t_outs[k].detach().numpy(), v)
        for k, v in final.items():
            close(f"{label}final {k}", t_final[k].detach().numpy(), v)
        loss = sum((t_outs[k] * torch.from_numpy(d)).sum() for k, d in d_outs.items())
        loss = loss + sum((t_final[k] * torch.from_numpy(d)).sum() for k, d in d_final.items())
        if torch.is_tensor(loss) and loss.requires_grad:
            loss.backward()
            for k, p in mod.params.items():
                got = np.zeros(p.shape) if p.grad is None else p.grad.numpy()
                close(f"{label}parameter gradient {k}", got, grads["params"][k])

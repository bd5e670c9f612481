"""Interop with torch.nn: copy the weights of nn.RNN / nn.LSTM / nn.GRU into an executable.

In:  an executable of specs/rnn.seq, lstm.seq or gru.seq (either backend) and a
     one-layer, unidirectional torch module with biases.
Out: the executable's parameters set so it computes what the torch module computes.
     torch packs gates row-wise: LSTM i, f, g, o; GRU r, z, n.
"""

from __future__ import annotations

import numpy as np

from .errors import SpecError

GATES = {"LSTM": "ifgo", "GRU": "rzn"}


def weights_of(kind: str, module, suffix: str = "_l0") -> dict:
    """The spec's parameter names (specs/rnn.seq, lstm.seq, gru.seq) → torch's weights of one layer
    and direction (`_l0`; `_l0_reverse` for the backward direction of a bidirectional module)."""
    sd = {k: v.detach().cpu().numpy() for k, v in module.state_dict().items()}
    if kind == "RNN":
        return {"W_ih": sd[f"weight_ih{suffix}"], "W_hh": sd[f"weight_hh{suffix}"], "b_ih": sd[f"bias_ih{suffix}"],
                "b_hh": sd[f"bias_hh{suffix}"]}
    out = {}
    for j, g in enumerate(GATES[kind]):
        H = module.hidden_size
        rows = slice(j * H, (j + 1) * H)
        out[f"W_i{g}"] = sd[f"weight_ih{suffix}"][rows]
        out[f"W_h{g}"] = sd[f"weight_hh{suffix}"][rows]
        out[f"b_i{g}"] = sd[f"bias_ih{suffix}"][rows]
        out[f"b_h{g}"] = sd[f"bias_hh{suffix}"][rows]
    return out


def from_torch(exe, module) -> None:
    import torch

    kind = type(module).__name__
    if kind not in ("RNN", "LSTM", "GRU"):
        raise SpecError(f"from_torch copies nn.RNN, nn.LSTM or nn.GRU, not {kind}")
    if module.num_layers != 1 or module.bidirectional or not module.bias or not module.batch_first:
        raise SpecError("from_torch needs a one-layer, unidirectional module with bias=True and batch_first=True")
    if kind == "RNN" and module.nonlinearity != "tanh":
        raise SpecError("specs/rnn.seq is the tanh RNN")
    weights = weights_of(kind, module)
    if set(weights) != set(exe.param_specs):
        raise SpecError(f"{exe.name} does not have the parameters of nn.{kind}: "
                        f"expected {sorted(weights)}, has {sorted(exe.param_specs)}")
    for k, v in weights.items():
        if tuple(v.shape) != tuple(exe.param_specs[k][0]):
            raise SpecError(f"{k}: torch has shape {tuple(v.shape)}, {exe.name} {tuple(exe.param_specs[k][0])}")
    if exe.backend == "numpy":
        exe.params = {k: np.asarray(v, dtype=exe.dtype) for k, v in weights.items()}
    else:
        with torch.no_grad():
            params = exe.params
            for k, v in weights.items():
                params[k].copy_(torch.from_numpy(np.ascontiguousarray(v)))

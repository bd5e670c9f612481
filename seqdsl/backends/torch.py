"""The PyTorch backend: the op → emitter table and helpers for generated torch code.

In:  nothing (tables only); used by `seqdsl.backends.codegen`.
Out: `EMITTER`, an `Emitter` whose generated modules import only torch. Per-step reads
     of hoisted values use `unbind(0)` (indexing `xp[t]` makes backward O(T²)).
     Attention lowers onto F.scaled_dot_product_attention.
"""

from __future__ import annotations

from ..ops import Op
from .codegen import COMMON, Emitter

HELPERS = '''
_CTX = {"dtype": torch.float32, "device": "cpu"}


def _full(shape, value, like):
    return torch.full(shape, value, dtype=_CTX["dtype"], device=_CTX["device"])


def _sigtanh(x, k):
    return torch.cat([torch.sigmoid(x[..., :k]), torch.tanh(x[..., k:])], -1)


def _softmax(x):
    return torch.softmax(x, -1)


def _layernorm(x, gamma, beta, eps=1e-5):
    return F.layer_norm(x, (x.shape[-1],), gamma, beta, eps)


def _onehot(tokens, size):
    return F.one_hot(tokens, size).to(_CTX["dtype"])


def _positions(T, D):
    pos = torch.arange(T, dtype=torch.float64)[:, None]
    rate = torch.exp(-torch.log(torch.tensor(10000.0, dtype=torch.float64)) *
                     (torch.arange(0, D, 2, dtype=torch.float64) / D))
    out = torch.zeros(T, D, dtype=torch.float64)
    out[:, 0::2] = torch.sin(pos * rate)
    out[:, 1::2] = torch.cos(pos * rate[: D // 2])
    return out.to(dtype=_CTX["dtype"], device=_CTX["device"])


def _attention(q, k, v, heads, causal):
    B, T, D = q.shape
    S = k.shape[1]
    qh = q.reshape(B, T, heads, D // heads).transpose(1, 2)
    kh = k.reshape(B, S, heads, D // heads).transpose(1, 2)
    vh = v.reshape(B, S, heads, v.shape[-1] // heads).transpose(1, 2)
    out = F.scaled_dot_product_attention(qh, kh, vh, is_causal=causal)
    return out.transpose(1, 2).reshape(B, T, v.shape[-1])
'''

TABLE = {
    **COMMON,
    Op.TANH: lambda n, a, t: f"torch.tanh({a[0]})",
    Op.SIGMOID: lambda n, a, t: f"torch.sigmoid({a[0]})",
    Op.SIGTANH: lambda n, a, t: f"_sigtanh({a[0]}, {n['split'].value})",
    Op.RELU: lambda n, a, t: f"torch.relu({a[0]})",
    Op.EXP: lambda n, a, t: f"torch.exp({a[0]})",
    Op.LOG: lambda n, a, t: f"torch.log({a[0]})",
    Op.CONCAT: lambda n, a, t: f"torch.cat([{', '.join(a)}], dim={n.get('axis', -1)})",
}

EMITTER = Emitter(
    name="torch",
    imports="import torch\nimport torch.nn.functional as F",
    helpers=HELPERS,
    table=TABLE,
    stack="torch.stack({items}, 1)",
    steps="{v}.unbind(0)",
    to_time_major="{v}.transpose(0, 1)",
    to_batch_first="{v}.transpose(0, 1)",
)

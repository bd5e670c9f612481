"""The PyTorch backend: the op → emitter table and helpers for generated torch code.

In:  nothing (tables only); used by `seqdsl.backends.codegen`.
Out: `EMITTER`, an `Emitter` whose generated modules import only torch. Per-step reads
     of hoisted values use `unbind(0)` (indexing `xp[t]` makes backward O(T²)).
     Attention lowers onto F.scaled_dot_product_attention.
"""

from __future__ import annotations

from ..ops import Op
from ..passes.fma import fuse_multiply_add
from .codegen import COMMON, Emitter, transposed

HELPERS = '''
_CTX = {"dtype": torch.float32, "device": "cpu"}


def _full(shape, value, like):
    return torch.full(shape, value, dtype=_CTX["dtype"], device=_CTX["device"])


_SIGTANH = {}


def _sigtanh(x, k):
    """sigmoid on columns [0, k), tanh on the rest, as one tanh: σ(a) = ½·tanh(a/2) + ½."""
    key = (k, x.shape[-1], x.dtype, x.device)
    if key not in _SIGTANH:
        n = x.shape[-1]
        half = torch.ones(n, dtype=x.dtype, device=x.device)
        half[:k] = 0.5
        shift = torch.zeros(n, dtype=x.dtype, device=x.device)
        shift[:k] = 0.5
        _SIGTANH[key] = (half, shift)
    half, shift = _SIGTANH[key]
    return torch.addcmul(shift, torch.tanh(x * half), half)


def _bias(P, pre, names, like):
    """A packed bias: the spec's bias per gate, zeros where the spec has none."""
    rows = like.shape[0] // len(names)
    return torch.cat([P[pre + n] if n else like.new_zeros(rows) for n in names])


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
    Op.ADDCMUL: lambda n, a, t: f"torch.addcmul({a[0]}, {a[1]}, {a[2]})",
    Op.ADDMM: lambda n, a, t: f"torch.addmm({a[0]}, {a[2]}, {transposed(a[1])})",
    Op.TANH: lambda n, a, t: f"torch.tanh({a[0]})",
    Op.SIGMOID: lambda n, a, t: f"torch.sigmoid({a[0]})",
    Op.SIGTANH: lambda n, a, t: f"_sigtanh({a[0]}, {n['split'].value})",
    Op.RELU: lambda n, a, t: f"torch.relu({a[0]})",
    Op.EXP: lambda n, a, t: f"torch.exp({a[0]})",
    Op.LOG: lambda n, a, t: f"torch.log({a[0]})",
    Op.CONCAT: lambda n, a, t: f"torch.cat([{', '.join(a)}], dim={n.get('axis', -1)})",
}

def fused_cell(fname: str, loop_fname: str, std, sizes: dict) -> list:
    """A recognised standard cell: one call of torch's fused kernel (see passes/recognize.py).

    It takes the arguments of the cell's generated loop (codegen: `P__`, `pre__`, its input,
    `init__`, ...); it holds no value named after the spec, so its locals are plain."""
    pack = lambda names: "torch.cat([" + ", ".join(f"P__[pre__ + {n!r}]" for n in names) + "])"
    h, c = std.states["h"], std.states.get("c")
    lines = [
        f"def {fname}(P__, pre__, x__in, init__, memory__, reverse__=False, seqs__=False):",
        f'    """A standard {std.kind} step: torch._VF.{std.kind} (oneDNN on CPU, cuDNN on GPU)."""',
        "    if seqs__:  # per-step states are not kept by the fused kernel",
        f"        return {loop_fname}(P__, pre__, x__in, init__, memory__, reverse__, seqs__)",
        f"    w_ih = {pack(std.w_ih)}",
        f"    w_hh = {pack(std.w_hh)}",
        f"    b_ih = _bias(P__, pre__, {std.b_ih!r}, w_ih)",
        f"    b_hh = _bias(P__, pre__, {std.b_hh!r}, w_hh)",
        "    zeros = x__in.new_zeros((1, x__in.shape[0], w_hh.shape[1]))",
        f"    h0 = zeros if init__.get({h!r}) is None else init__[{h!r}][None]",
    ]
    if c:
        lines.append(f"    c0 = zeros if init__.get({c!r}) is None else init__[{c!r}][None]")
    lines.append("    x = x__in.flip(1) if reverse__ else x__in")
    hx = "(h0, c0)" if c else "h0"
    outs = "y, h_n, c_n" if c else "y, h_n"
    lines.append(f"    {outs} = torch._VF.{std.kind}(x, {hx}, (w_ih, w_hh, b_ih, b_hh), True, 1, 0.0, "
                 f"torch.is_grad_enabled(), False, True)")
    lines.append("    y = y.flip(1) if reverse__ else y")
    finals = f"{h!r}: h_n[0]" + (f", {c!r}: c_n[0]" if c else "")
    lines.append(f"    return {{{', '.join(f'{o!r}: y' for o in std.outputs)}}}, {{}}, {{{finals}}}")
    return lines


EMITTER = Emitter(
    name="torch",
    imports="import torch\nimport torch.nn.functional as F",
    helpers=HELPERS,
    table=TABLE,
    stack="torch.stack({items}, 1)",
    steps="{v}.unbind(0)",
    to_time_major="{v}.transpose(0, 1)",
    to_batch_first="{v}.transpose(0, 1)",
    every_step="{v}[:, None].expand((B, T) + tuple({v}.shape[1:])).clone()",
    fused_cell=fused_cell,
    passes=(fuse_multiply_add,),
    split="{v}.split({sizes}, -1)",
    pre_transpose="{v}.T",
)

"""PyTorch kernels: the helpers generated torch modules call.

In:  torch tensors, batch-first as in docs/api.md.
Out: `_full`, `_num` (a number as a tensor), `_sigtanh`, `_bias` (packing a standard cell's biases),
     `_softmax`, `_softplus`, `_layernorm`, `_onehot`, `_positions`, `_attention` and
     `_masked_attention` (with a key-padding mask; both on F.scaled_dot_product_attention).

Generated modules copy the kernels they call (seqdsl/kernels/__init__.py); `_CTX` holds the
dtype and device the module runs in (set by the torch module wrapper). tests/test_kernels.py
checks them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

_CTX = {"dtype": torch.float32, "device": "cpu"}


def _full(shape, value, like):
    return torch.full(shape, value, dtype=_CTX["dtype"], device=_CTX["device"])


def _num(v):
    """A number (a Python float in generated code) as a tensor of the module's dtype and device; a
    tensor of them is returned as it is."""
    return torch.as_tensor(v, dtype=_CTX["dtype"], device=_CTX["device"])


def _softplus(x):
    """log(1 + exp(x)), exactly (F.softplus returns x above its threshold of 20)."""
    return torch.logaddexp(x, x.new_zeros(()))


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


_EYES = {}


def _onehot(tokens, size):
    """Rows of an identity matrix made once per size, dtype and device (one indexing op, not
    one_hot and a conversion: it runs at every step of generation)."""
    key = (size, _CTX["dtype"], tokens.device)
    eye = _EYES.get(key)
    if eye is None:
        eye = _EYES[key] = torch.eye(size, dtype=_CTX["dtype"], device=tokens.device)
    return eye[tokens]


def _shift(x, fill):
    """x one step late along the time axis (axis 1): `fill` at step 0 (y[t-1] of a prediction): a
    number, or one value per sample (the last value of the chunk before)."""
    first = fill.unsqueeze(1).to(x.dtype) if torch.is_tensor(fill) else torch.full_like(x[:, :1], fill)
    return torch.cat([first, x[:, :-1]], 1)


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


def _masked_attention(q, k, v, keymask, heads, causal):
    """Attention over only the keys whose `keymask` (B, S) is nonzero (a boolean
    attn_mask, joined with the causal one: scaled_dot_product_attention takes one or the other)."""
    B, T, D = q.shape
    S = k.shape[1]
    qh = q.reshape(B, T, heads, D // heads).transpose(1, 2)
    kh = k.reshape(B, S, heads, D // heads).transpose(1, 2)
    vh = v.reshape(B, S, heads, v.shape[-1] // heads).transpose(1, 2)
    keep = (keymask != 0)[:, None, None, :]
    if causal:
        keep = keep & torch.ones(T, S, dtype=torch.bool, device=q.device).tril()
    out = F.scaled_dot_product_attention(qh, kh, vh, attn_mask=keep)
    return out.transpose(1, 2).reshape(B, T, v.shape[-1])


# an LSTM's forget gate past a sample's end: sigmoid(+_SATURATE) is exactly 1 and sigmoid(-_SATURATE)
# exactly 0 in float32 and float64 (and so are their derivatives), whatever else the gate adds
_SATURATE = 1e30


def _saturates(x):
    """Can `_run_padded` saturate an LSTM's gates for x: float32 or float64, and no autocast (the
    ±_SATURATE column is inf in float16, and a kernel under autocast computes in a smaller type)."""
    if x.dtype not in (torch.float32, torch.float64):
        return False
    try:
        return not torch.is_autocast_enabled(x.device.type)
    except TypeError:  # torch before 2.4: one flag for CUDA, one for the CPU
        return not (torch.is_autocast_enabled() if x.device.type == "cuda" else torch.is_autocast_cpu_enabled())


def _run_padded(kind, x, hx, weights, lengths, train):
    """torch._VF's kernel `kind` once over the whole padded batch x (B, T, I), sample b real on its
    first lengths[b] steps: the padding is computed, and kept from reaching anything real. Its
    input is zero there (whatever the batch holds, NaN included), so every value past the end is
    finite; a sample's final h is its output at its own last step; an LSTM's final c is the kernel's,
    because one more input feature, 1 only at padding, with weight -_SATURATE into the input gate
    and +_SATURATE into the forget gate, keeps c exactly as it was (c = 1 * c + 0 * g), and nothing
    flows back through those gates (their derivatives are exactly 0). Outputs past the end are left
    as they are: every caller zeroes a cell's outputs at padding (`mask_lengths`: "unzeroed").
    Not for "rnn_relu": nothing bounds its values past the end, and one that overflows would make
    a gradient NaN (0 * inf). Returns what `_run_by_length` returns."""
    if kind not in ("lstm", "gru", "rnn_tanh"):
        raise ValueError(f"_run_padded: {kind} is not bounded past the end of a sample")
    B, T = x.shape[0], x.shape[1]
    lengths = lengths.to(x.device)
    pad = (torch.arange(T, device=x.device) >= lengths[:, None])[..., None]
    x = x.masked_fill(pad, 0)
    w_ih, w_hh, b_ih, b_hh = weights
    if kind == "lstm":
        H = w_hh.shape[1]
        x = torch.cat([x, pad.to(x.dtype)], -1)
        col = w_ih.new_zeros((w_ih.shape[0], 1))
        col[:H] = -_SATURATE  # the input gate: nothing new is written
        col[H:2 * H] = _SATURATE  # the forget gate: everything is kept
        w_ih = torch.cat([w_ih, col], 1)
    out = getattr(torch._VF, kind)(x, tuple(hx) if len(hx) > 1 else hx[0], (w_ih, w_hh, b_ih, b_hh), True, 1, 0.0,
                                   train, False, True)
    y = out[0]
    h = y[torch.arange(B, device=x.device), lengths - 1][None]
    return y, [h, *out[2:]]


def _row_runs(mask, reverse):
    """The samples of a length mask (B, T), true on the first `length` steps of each row, sorted
    by length, longest first, and the stretches of steps over which the same samples run: (order,
    inverse, runs) as the NumPy kernel of that name (numpy_kernels.py) has them."""
    T = mask.shape[1]
    lens = mask.sum(1)
    if not torch.equal(mask != 0, torch.arange(T, device=mask.device) < lens[:, None]):
        raise ValueError("a length mask must be 1 on each row's first steps and 0 after them")
    order = inverse = None
    if bool((lens[1:] > lens[:-1]).any()):
        order = torch.argsort(lens, descending=True, stable=True)
        inverse = torch.argsort(order)
        lens = lens[order]
    ls = lens.tolist()
    bounds = sorted(set([0] + ls))
    runs = [(a, b, sum(1 for n in ls if n >= b)) for a, b in zip(bounds[:-1], bounds[1:])]
    return order, inverse, runs[::-1] if reverse else runs


def _unsort(x, inv):
    """Rows sorted by `_row_runs` back in the caller's order (`inv`: the inverse permutation)."""
    return x if inv is None else x[inv]


def _rows_steps(x, runs, reverse, batched):
    """A value computed over all steps, x (T, B, ...) (`batched`; else (T, ...)), cut for each
    stretch of `runs` (`_row_runs`, in its order): the tuple of its steps, each on the stretch's
    first n rows. One split over time for all stretches, so autograd sums one gradient for x, not
    one whole-size gradient per stretch."""
    ordered = runs[::-1] if reverse else runs
    sizes = [b - a for a, b, _ in ordered]
    rest = x.shape[0] - sum(sizes)
    blocks = x.split(sizes + [rest] if rest else sizes, 0)
    cut = [(block[:, :n] if batched else block).unbind(0) for block, (_, _, n) in zip(blocks, ordered)]
    return cut[::-1] if reverse else cut


def _rows_block(items, B, reverse):
    """A stretch's per-step values (each (n, ...), in the order the loop made them: last step first
    when `reverse`) as one block (steps, B, ...) in time order, zero in the rows of the samples
    that do not run in it (`_row_runs`)."""
    block = torch.stack(items[::-1] if reverse else items)
    return F.pad(block, (0, 0) * (block.dim() - 2) + (0, B - block.shape[1]))


def _rows_join(runs, T, reverse):
    """The blocks of a loop's stretches (`_rows_block`, in the order it ran them) as one sequence
    (B, T, ...), zero at the steps no sample reaches."""
    if not runs:
        raise ValueError("every sample has length 0")
    y = torch.cat(runs[::-1] if reverse else runs)
    if y.shape[0] < T:
        y = F.pad(y, (0, 0) * (y.dim() - 1) + (0, T - y.shape[0]))
    return y.transpose(0, 1)


def _rows_keep(new, whole):
    """A state's first rows replaced by the values a stretch ended with (no write in place)."""
    return new if new.shape[0] == whole.shape[0] else torch.cat([new, whole[new.shape[0]:]])


def _stack(items):
    """Per-step values, each (B, ...), as one sequence (B, T, ...): torch.stack, or a view of the
    one value when there is one step (each step of generation), which stack would copy."""
    return items[0].unsqueeze(1) if len(items) == 1 else torch.stack(items, 1)


def _flip_within(x, lengths):
    """Each sample's first lengths[b] steps of x (B, T, ...) in reverse order; the padding after
    them stays where it is (a reversed run over a padded batch, as pack_padded_sequence has it)."""
    steps = torch.arange(x.shape[1], device=x.device)
    n = lengths.to(x.device)[:, None]
    index = torch.where(steps < n, n - 1 - steps, steps)
    return x.gather(1, index.view(index.shape + (1,) * (x.dim() - 2)).expand(x.shape))


def _run_by_length(kind, x, hx, weights, lengths, train):
    """torch._VF's fused kernel `kind` ("lstm", "gru", "rnn_tanh", "rnn_relu") over a padded batch
    x (B, T, I) whose sample b has lengths[b] real steps; hx the initial states, each (1, B, H).
    The samples run longest first, and the kernel is called once per stretch of steps over which
    no sample ends, on the samples still running: padding is never computed, and each sample's
    final states are those of its own last step. Returns (outputs (B, T, H), zero at padding,
    [final states, each (1, B, H)])."""
    fn = getattr(torch._VF, kind)
    batch, steps = x.shape[0], x.shape[1]
    lens = [int(n) for n in lengths.tolist()]
    order = sorted(range(batch), key=lambda b: -lens[b])
    perm = torch.as_tensor(order, device=x.device)
    xs = x.index_select(0, perm)
    states = [h.index_select(1, perm) for h in hx]
    running = [lens[b] for b in order]
    ys, t0, n = [], 0, batch
    while t0 < running[0]:
        while running[n - 1] <= t0:
            n -= 1
        t1 = running[n - 1]  # the next step at which a sample ends
        now = tuple(h[:, :n] for h in states)
        out = fn(xs[:n, t0:t1].contiguous(), now if len(now) > 1 else now[0], weights, True, 1, 0.0, train, False,
                 True)
        states = [torch.cat([new, h[:, n:]], 1) for new, h in zip(out[1:], states)]
        ys.append(F.pad(out[0], (0, 0, 0, 0, 0, batch - n)))
        t0 = t1
    y = torch.cat(ys, 1)
    y = F.pad(y, (0, 0, 0, steps - y.shape[1])) if y.shape[1] < steps else y
    back = torch.argsort(perm)
    return y.index_select(0, back), [h.index_select(1, back) for h in states]

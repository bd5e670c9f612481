"""Speed with `lengths=` on a CUDA GPU: ratios measured in the same run (a device check; on a
machine without CUDA it says so and exits 0).

1. The standard LSTM (torch, fused) with 32 lengths from 10 to 100 against the same batch padded
   to 100 without lengths, forward (no gradients) and forward+backward, through `seqdsl.compile`.
2. The three ways the fused kernel can run such a batch, called directly: once per stretch of
   steps on the samples still running (`_run_by_length`), once over the padded batch with the
   padding kept out (`_run_padded`, what the module runs on a GPU), and once over the packed
   batch (pack_padded_sequence, cuDNN's variable-length kernel, as torch.nn.LSTM runs one), each
   against the padded kernel.
3. A custom cell (the peephole LSTM, a generated loop) with lengths against without (masked: on a
   GPU the loop never runs on rows, as a step costs its launches whatever the rows).
And first, the module's outputs and final states with lengths on the GPU against the CPU's, with
TF32 off (cuDNN's RNNs use TF32 by default, 2e-4 from the CPU's float32 here).
Shapes (B, T, I, H) = (32 and 256, 100, 64, 256), float32.

Run: `python benchmarks/bench_lengths_gpu.py` on a machine with CUDA.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench_lengths import lstm_call  # noqa: E402
from timing import paired  # noqa: E402

import seqdsl  # noqa: E402
from seqdsl.kernels.torch_kernels import _run_by_length, _run_padded  # noqa: E402

T, I, H = 100, 64, 256
ROUNDS = 9


def _run_packed(kind, x, hx, weights, lengths, train):
    rnn = torch.nn.utils.rnn
    packed = rnn.pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
    hs = [h.index_select(1, packed.sorted_indices) for h in hx]
    out = getattr(torch._VF, kind)(packed.data, packed.batch_sizes, tuple(hs), weights, True, 1, 0.0, train, False)
    y, _ = rnn.pad_packed_sequence(packed._replace(data=out[0]), batch_first=True, total_length=x.shape[1])
    return y, [h.index_select(1, packed.unsorted_indices) for h in out[1:]]


def spread(rng, B) -> torch.Tensor:
    lens = rng.integers(10, T + 1, size=B)
    lens[0] = T
    return torch.as_tensor(lens)


def module(B, rng) -> None:
    mod = seqdsl.compile(ROOT / "specs/lstm.seq", backend="torch", sizes={"I": I, "H": H}).to("cuda")
    x = torch.randn(B, T, I, device="cuda", requires_grad=True)
    run = lambda make, grad: lstm_call(mod, x, make, grad)  # noqa: E731
    check(mod, B, rng)
    for grad, what in ((False, "forward"), (True, "forward+backward")):
        _, r = paired({"padded": run(None, grad), "lengths": run(lambda: spread(rng, B), grad)}, ROUNDS, "padded",
                      sync=torch.cuda.synchronize)
        print(f"B {B}: standard LSTM (module, fused) {what}, 32 lengths 10..100 vs padded: ratio {r['lengths']:.2f}")


def check(mod, B, rng) -> None:
    """The GPU's outputs and final states with lengths against the CPU's (5e-5, float32)."""
    cpu = seqdsl.compile(ROOT / "specs/lstm.seq", backend="torch", sizes={"I": I, "H": H})
    cpu.load_state_dict({k: v.cpu() for k, v in mod.state_dict().items()})
    x, lengths = torch.randn(B, T, I), {"x": spread(rng, B)}
    tf32 = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    with torch.no_grad():
        got, want = mod(x=x.cuda(), lengths=lengths), cpu(x=x, lengths=lengths)
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = tf32
    err = max(float((g[k].cpu() - w[k]).abs().max()) for g, w in zip(got, want) for k in w)
    print(f"B {B}: GPU against CPU with lengths (TF32 off), max |difference| {err:.2e} "
          f"({'ok' if err <= 5e-5 else 'OVER 5e-5'})")


def kernels(B, rng) -> None:
    x = torch.randn(B, T, I, device="cuda", requires_grad=True)
    shapes = ((4 * H, I), (4 * H, H), (4 * H,), (4 * H,))
    w = tuple((torch.randn(s, device="cuda") * 0.05).requires_grad_() for s in shapes)
    hx = [torch.zeros(1, B, H, device="cuda"), torch.zeros(1, B, H, device="cuda")]

    def call(fn, grad):
        def f():
            lengths = spread(rng, B).cuda()
            if fn is None:
                out = torch._VF.lstm(x, tuple(hx), w, True, 1, 0.0, grad, False, True)
                y, finals = out[0], out[1:]
            else:
                y, finals = fn("lstm", x, hx, w, lengths, grad)
            if grad:
                (y.sum() + finals[1].sum()).backward()
        return f

    for grad, what in ((False, "forward"), (True, "forward+backward")):
        fns = {"padded": call(None, grad), "by stretch": call(_run_by_length, grad),
               "padded, kept out": call(_run_padded, grad), "packed (cuDNN)": call(_run_packed, grad)}
        if not grad:
            fns = {k: (lambda f=f: _nograd(f)) for k, f in fns.items()}
        t, r = paired(fns, ROUNDS, "padded", sync=torch.cuda.synchronize)
        print(f"B {B}: LSTM kernel {what}, 32 lengths 10..100: padded {t['padded'] * 1e3:.2f} ms; "
              + ", ".join(f"{k} {r[k]:.2f}x" for k in fns if k != "padded"))


def _nograd(f):
    with torch.no_grad():
        f()


def custom(B, rng) -> None:
    mod = seqdsl.compile(ROOT / "specs/peephole_lstm.seq", backend="torch", sizes={"I": I, "H": H}).to("cuda")
    x = torch.randn(B, T, I, device="cuda")

    def run(lengths, grad):
        def f():
            n = None if lengths is None else {"x": lengths()}
            if grad:
                mod(x=x, lengths=n)[0]["y"].sum().backward()
            else:
                with torch.no_grad():
                    mod(x=x, lengths=n)
        return f

    for grad, what in ((False, "forward"), (True, "forward+backward")):
        _, r = paired({"plain": run(None, grad), "lengths": run(lambda: spread(rng, B), grad)}, 5, "plain",
                      sync=torch.cuda.synchronize)
        print(f"B {B}: peephole LSTM {what}, lengths 10..100 vs without: ratio {r['lengths']:.2f}")


def main() -> None:
    if not torch.cuda.is_available():
        print("no CUDA device: skipped")
        return
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}, (T, I, H) = {(T, I, H)}, float32")
    rng = np.random.default_rng(0)
    for B in (32, 256):
        module(B, rng)
        kernels(B, rng)
        custom(B, rng)


if __name__ == "__main__":
    main()

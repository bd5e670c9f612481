"""PyTorch backend speed: forward and forward+backward, ratios measured in the same run.

- the generated LSTM, GRU and RNN (standard cells → torch's fused kernels) vs torch.nn.LSTM/GRU/RNN;
  the generated loop (`fused=False`) shown for reference;
- the generated peephole LSTM (no vendor kernel: the generic loop after the shared passes) vs the
  best hand-written PyTorch loop for it (input projection hoisted over all steps, one fused
  recurrent matmul per step, unbind instead of indexing, chunked gates);
- the time from `seqdsl.compile` to the first output.
Shapes (B, T, I, H): (32, 100, 64, 256), (1, 50, 32, 64), (8, 1000, 64, 128). Target ≤ 1.1×.
Runs on CPU, and on CUDA too when a device is present (or only on `--device NAME`).

Run: `.venv/bin/python benchmarks/bench_torch.py [--quick] [--device cpu|cuda]`
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from timing import alternate  # noqa: E402

import seqdsl  # noqa: E402
from seqdsl.interop import from_torch  # noqa: E402

SHAPES = [(32, 100, 64, 256), (1, 50, 32, 64), (8, 1000, 64, 128)]


def sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


def fwd(f, x):
    def run():
        with torch.no_grad():
            f(x)
    return run


def fwd_bwd(f, x, params):
    def run():
        for p in params:
            p.grad = None
        f(x).sum().backward()
    return run


class PeepholeByHand(torch.nn.Module):
    """The best hand-written loop for specs/peephole_lstm.seq."""

    def __init__(self, exe):
        super().__init__()
        P = exe.params
        cat = lambda names: torch.cat([P[n] for n in names])
        self.Wx = torch.nn.Parameter(cat(["W_i", "W_f", "W_g", "W_o"]).detach().clone())
        self.Wh = torch.nn.Parameter(cat(["U_i", "U_f", "U_g", "U_o"]).detach().clone())
        self.b = torch.nn.Parameter(cat(["b_i", "b_f", "b_g", "b_o"]).detach().clone())
        self.p = torch.nn.Parameter(torch.stack([P["p_i"], P["p_f"], P["p_o"]]).detach().clone())

    def forward(self, x):
        B, T, _ = x.shape
        H = self.Wh.shape[1]
        xp = torch.nn.functional.linear(x, self.Wx, self.b).transpose(0, 1).unbind(0)
        h = x.new_zeros(B, H)
        c = x.new_zeros(B, H)
        p_i, p_f, p_o = self.p.unbind(0)
        WhT = self.Wh.t()
        ys = []
        for t in range(T):
            z = torch.addmm(xp[t], h, WhT)
            i, f, g, o = z.chunk(4, 1)
            i = torch.sigmoid(torch.addcmul(i, p_i, c))
            f = torch.sigmoid(torch.addcmul(f, p_f, c))
            c = torch.addcmul(f * c, i, torch.tanh(g))
            h = torch.sigmoid(torch.addcmul(o, p_o, c)) * torch.tanh(c)
            ys.append(h)
        return torch.stack(ys, 1)


def main() -> None:
    if "--device" in sys.argv:
        devices = [sys.argv[sys.argv.index("--device") + 1]]
    else:
        devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in devices:
        run(device, "--quick" in sys.argv)


def run(device: str, quick: bool) -> None:
    torch.manual_seed(0)
    print(f"device: {device}, torch {torch.__version__}, threads {torch.get_num_threads()}")
    header = (f"{'cell':9} {'(B, T, I, H)':>20} {'mode':>8} {'ref (ms)':>9} {'seqdsl':>9} {'ratio':>6} "
              f"{'loop':>9} {'ratio':>6}")
    print(header)
    for B, T, I, H in SHAPES:
        if quick:
            T = min(T, 100)
        repeat = 5 if T >= 1000 else 15
        x = torch.randn(B, T, I, device=device)
        for cell, Mod in (("lstm", torch.nn.LSTM), ("gru", torch.nn.GRU), ("rnn", torch.nn.RNN)):
            ref = Mod(I, H, batch_first=True).to(device)
            ours = seqdsl.compile(ROOT / f"specs/{cell}.seq", backend="torch", sizes={"I": I, "H": H}).to(device)
            loop = seqdsl.compile(ROOT / f"specs/{cell}.seq", backend="torch", sizes={"I": I, "H": H},
                                  fused=False).to(device)
            from_torch(ours, ref)
            from_torch(loop, ref)
            f_ref = lambda z: ref(z)[0]
            f_ours = lambda z: ours(x=z)[0]["y"]
            f_loop = lambda z: loop(x=z)[0]["y"]
            for mode in ("fwd", "fwd+bwd"):
                if mode == "fwd":
                    fns = {"ref": fwd(f_ref, x), "ours": fwd(f_ours, x), "loop": fwd(f_loop, x)}
                else:
                    fns = {"ref": fwd_bwd(f_ref, x, list(ref.parameters())),
                           "ours": fwd_bwd(f_ours, x, list(ours.parameters())),
                           "loop": fwd_bwd(f_loop, x, list(loop.parameters()))}
                m = alternate(fns, repeat, sync=lambda: sync(device))
                print(f"{cell:9} {str((B, T, I, H)):>20} {mode:>8} {m['ref'] * 1e3:9.2f} {m['ours'] * 1e3:9.2f} "
                      f"{m['ours'] / m['ref']:6.2f} {m['loop'] * 1e3:9.2f} {m['loop'] / m['ref']:6.2f}")
        ours = seqdsl.compile(ROOT / "specs/peephole_lstm.seq", backend="torch", sizes={"I": I, "H": H}).to(device)
        hand = PeepholeByHand(ours).to(device)
        with torch.no_grad():
            err = (hand(x) - ours(x=x)[0]["y"]).abs().max().item()
        assert err < 1e-4, err
        f_ours = lambda z: ours(x=z)[0]["y"]
        for mode in ("fwd", "fwd+bwd"):
            fns = ({"ref": fwd(hand, x), "ours": fwd(f_ours, x)} if mode == "fwd" else
                   {"ref": fwd_bwd(hand, x, list(hand.parameters())),
                    "ours": fwd_bwd(f_ours, x, list(ours.parameters()))})
            m = alternate(fns, repeat, sync=lambda: sync(device))
            print(f"{'peephole':9} {str((B, T, I, H)):>20} {mode:>8} {m['ref'] * 1e3:9.2f} {m['ours'] * 1e3:9.2f} "
                  f"{m['ours'] / m['ref']:6.2f}   (ref: hand-written loop)")
    t0 = time.perf_counter()
    exe = seqdsl.compile(ROOT / "specs/lstm.seq", backend="torch", sizes={"I": 64, "H": 256}).to(device)
    exe(x=torch.randn(32, 100, 64, device=device))
    print(f"\ncompile to first output (LSTM, torch): {(time.perf_counter() - t0) * 1e3:.0f} ms")
    t0 = time.perf_counter()
    exe = seqdsl.compile(ROOT / "specs/attention.seq", backend="torch", name="AttnTranslate").to(device)
    exe(**{k: v.to(device) for k, v in exe.example_inputs(batch=8, steps=20).items()})
    print(f"compile to first output (AttnTranslate, torch): {(time.perf_counter() - t0) * 1e3:.0f} ms")


if __name__ == "__main__":
    main()

"""Forward time of the generated NumPy LSTM vs a hand-written NumPy LSTM (and torch.nn.LSTM).

The hand-written reference is as fast as we could make it: input projection hoisted over all
steps, one fused recurrent matmul per step into a preallocated buffer, gates reordered i, f, o, g
so that one tanh covers all four (σ(a) = ½·tanh(a/2) + ½ with the ½ folded into the weights),
and in-place gate math. Ratios are medians of interleaved runs in the same process.
Shapes (B, T, I, H): (32, 100, 64, 256), (1, 50, 32, 64), (8, 1000, 64, 128). Target ≤ 1.1×.

Run: `.venv/bin/python benchmarks/bench_numpy.py [--quick]`
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from timing import alternate  # noqa: E402

import seqdsl  # noqa: E402

SHAPES = [(32, 100, 64, 256), (1, 50, 32, 64), (8, 1000, 64, 128)]


def prepare(params: dict, H: int):
    """Pack spec weights for the hand-written kernel: rows i, f, o, g; ½ folded into σ rows."""
    gates = "ifog"
    Wx = np.concatenate([params[f"W_i{g}"] for g in gates])
    Wh = np.concatenate([params[f"W_h{g}"] for g in gates])
    b = np.concatenate([params[f"b_i{g}"] + params[f"b_h{g}"] for g in gates])
    scale = np.concatenate([np.full(3 * H, 0.5), np.ones(H)]).astype(Wx.dtype)
    return (Wx * scale[:, None]), np.ascontiguousarray((Wh * scale[:, None]).T), b * scale


def lstm_by_hand(x, Wx_scaled, WhT, b, H):
    B, T, I = x.shape
    xp = np.ascontiguousarray(x.transpose(1, 0, 2)).reshape(-1, I) @ Wx_scaled.T  # time-major, one GEMM
    xp += b
    xp = xp.reshape(T, B, 4 * H)
    h = np.zeros((B, H), x.dtype)
    c = np.zeros((B, H), x.dtype)
    z = np.empty((B, 4 * H), x.dtype)
    tmp = np.empty((B, H), x.dtype)
    y = np.empty((T, B, H), x.dtype)
    i, f, o, g = z[:, :H], z[:, H:2 * H], z[:, 2 * H:3 * H], z[:, 3 * H:]
    s = z[:, :3 * H]
    for t in range(T):
        np.matmul(h, WhT, out=z)
        z += xp[t]
        np.tanh(z, out=z)
        s *= 0.5
        s += 0.5
        c *= f
        np.multiply(i, g, out=tmp)
        c += tmp
        np.tanh(c, out=tmp)
        np.multiply(o, tmp, out=h)
        y[t] = h
    return y.transpose(1, 0, 2), h, c


def main() -> None:
    quick = "--quick" in sys.argv
    try:
        import torch

        torch.set_num_threads(2)
    except ImportError:
        torch = None
    print("ratio: seqdsl / hand-written (weights pre-packed outside the timing);")
    print("+pack: seqdsl / hand-written that packs the spec's weights on every call, as seqdsl does")
    print(f"{'(B, T, I, H)':>20} {'hand (ms)':>10} {'seqdsl (ms)':>12} {'ratio':>7} {'+pack':>7}" +
          (f" {'nn.LSTM (ms)':>13} {'seqdsl/nn':>10}" if torch else ""))
    for B, T, I, H in SHAPES:
        if quick:
            T = min(T, 100)
        exe = seqdsl.compile(ROOT / "specs/lstm.seq", sizes={"I": I, "H": H})
        x = np.random.default_rng(0).standard_normal((B, T, I)).astype(np.float32)
        Wx, WhT, b = prepare(exe.params, H)
        y_ref = lstm_by_hand(x, Wx, WhT, b, H)[0]
        y = exe(x=x)[0]["y"]
        assert np.abs(y - y_ref).max() < 1e-4, np.abs(y - y_ref).max()
        fns = {"hand": lambda: lstm_by_hand(x, Wx, WhT, b, H), "seqdsl": lambda: exe(x=x),
               "hand+pack": lambda: lstm_by_hand(x, *prepare(exe.params, H), H)}
        if torch is not None:
            ref = torch.nn.LSTM(I, H, batch_first=True)
            xt = torch.from_numpy(x)

            def run_torch():
                with torch.no_grad():
                    ref(xt)
            fns["torch"] = run_torch
        repeat = 5 if T >= 1000 else 15
        m = alternate(fns, repeat, warmup=0)
        ratio, packed = m["seqdsl"] / m["hand"], m["seqdsl"] / m["hand+pack"]
        line = f"{str((B, T, I, H)):>20} {m['hand'] * 1e3:10.2f} {m['seqdsl'] * 1e3:12.2f} {ratio:7.2f} {packed:7.2f}"
        if torch is not None:
            line += f" {m['torch'] * 1e3:13.2f} {m['seqdsl'] / m['torch']:10.2f}"
        print(line)


if __name__ == "__main__":
    main()

"""The torch backend's vendor kernel: a recognised standard cell as one call of torch._VF.

In:  the names of the generated function and of its loop twin, a `analysis.recognize.Standard`
     (kind "lstm" | "gru" | "rnn_tanh" | "rnn_relu", the spec's parameter names in torch's
     order, the state names), and whether the cell takes lengths (its masked module: one more
     argument, the 0/1 mask of real steps, `(B, T)`).
Out: `fused_cell(...)` → the lines of a function with the cell's calling convention (codegen:
     `P__`, `pre__`, its input, [its mask,] `init__`, `memory__`, `reverse__`, `seqs__`) that
     runs torch's fused kernel (oneDNN on CPU, cuDNN on GPU). With lengths, either the kernel
     runs once per stretch of steps over which no sample ends, on the samples still running,
     longest first (`_run_by_length`: the padding is never computed), or once over the padded
     batch with the padding kept from reaching anything real (`_run_padded`: zero input there, an
     LSTM's gates saturated so c stays, final h read from each sample's last output). Final states
     are each sample's own last; a reversed run reverses each sample within its own length
     (`_flip_within`). Per-step states (`seqs__`) fall back to the loop twin. Stretches cost a
     kernel call each (on a CPU, oneDNN sets each new shape up anew, 0.5-1.4 ms a call; on a GPU,
     32 lengths by stretch took 8-22 times the padded batch), and torch's packed kernel is slower
     than the padded one on both. So only training on a CPU with at most `MAX_STRETCHES` distinct
     lengths runs by stretch; everything else runs padded (benchmarks/bench_lengths.py and
     bench_lengths_gpu.py), except a relu RNN, whose values past the end are unbounded, and an
     LSTM in float16 or under autocast (`_saturates`).

The function holds no value named after the spec, so its locals are plain names.
"""

from __future__ import annotations

# on a CPU, a batch with more distinct lengths than this runs the kernel over the padded batch,
# not once per stretch of steps (oneDNN sets each new shape up anew; benchmarks/bench_lengths.py)
MAX_STRETCHES = 4


def _pack(names) -> str:
    return "torch.cat([" + ", ".join(f"P__[pre__ + {n!r}]" for n in names) + "])"


def _prologue(fname: str, loop_fname: str, std, mask: str, cached: bool) -> list:
    lines = [
        f"def {fname}(P__, pre__, x__in, {mask}init__, memory__, reverse__=False, seqs__=False):",
        f'    """A standard {std.kind} step: torch._VF.{std.kind} (oneDNN on CPU, cuDNN on GPU)."""',
        "    if seqs__:  # per-step states are not kept by the fused kernel",
        f"        return {loop_fname}(P__, pre__, x__in, {mask}init__, memory__, reverse__, seqs__)",
    ]
    pack = [f"w_ih = {_pack(std.w_ih)}", f"w_hh = {_pack(std.w_hh)}",
            f"b_ih = _bias(P__, pre__, {std.b_ih!r}, w_ih)", f"b_hh = _bias(P__, pre__, {std.b_hh!r}, w_hh)"]
    if cached:  # generation's step module: the packed weights are made at the first step and kept
        lines += ["    _once__ = _CACHE.get(pre__) if _CACHE is not None else None", "    if _once__ is None:",
                  *["        " + x for x in pack], "        if _CACHE is not None:",
                  "            _CACHE[pre__] = (w_ih, w_hh, b_ih, b_hh)", "    else:",
                  "        w_ih, w_hh, b_ih, b_hh = _once__"]
    else:
        lines += ["    " + x for x in pack]
    return lines


def _initial(std) -> list:
    """h0 (and c0): (1, B, H), the given initial states or zeros."""
    h, c = std.states["h"], std.states.get("c")
    lines = ["    zeros = x__in.new_zeros((1, x__in.shape[0], w_hh.shape[1]))",
             f"    h0 = zeros if init__.get({h!r}) is None else init__[{h!r}][None]"]
    if c:
        lines.append(f"    c0 = zeros if init__.get({c!r}) is None else init__[{c!r}][None]")
    return lines


def _cell_kernel(std, masked: bool, step_values: bool) -> list:
    """One step on torch's cell kernel (`torch._VF.lstm_cell`, ...), which has no set-up to pay
    for, unlike the sequence kernel; lines without indentation, ending with `y`, `h1` (and `c1`).
    `step_values`: x is the step's value (B, I) and y is (B, H) (generation's step module), else x
    is a sequence of one step, (B, 1, I), and y (B, 1, H)."""
    h, c = std.states["h"], std.states.get("c")
    x, keep, y = ("x__in", "(mask__in != 0)[:, None]", "") if step_values else \
        ("x__in[:, 0]", "mask__in[:, :1] != 0", "[:, None]")
    lines = []
    for s, v in ((h, "h0"), (c, "c0")) if c else ((h, "h0"),):
        lines += [f"{v} = init__.get({s!r})",
                  f"{v} = x__in.new_zeros((x__in.shape[0], w_hh.shape[1])) if {v} is None else {v}"]
    lines.append(f"hc = torch._VF.{std.kind}_cell({x}, {'(h0, c0)' if c else 'h0'}, w_ih, w_hh, b_ih, b_hh)")
    lines.append("h1, c1 = hc" if c else "h1, c1 = hc, None")
    if masked:  # a sample past its end keeps its states; its output is zero
        lines += [f"keep = {keep}", "h1 = torch.where(keep, h1, h0)",
                  f"y = torch.where(keep, h1, torch.zeros_like(h1)){y}"]
        if c:
            lines.append("c1 = torch.where(keep, c1, c0)")
    else:
        lines.append(f"y = h1{y}")
    return lines


def _one_step(std, masked: bool) -> list:
    """A call with T = 1: the cell kernel."""
    return (["    if x__in.shape[1] == 1:  # one step: the cell kernel"]
            + ["        " + x for x in _cell_kernel(std, masked, False)] + ["    " + _finish(std, "h1", "c1")])


def _finish(std, final_h: str, final_c: str) -> str:
    """The return line (4 spaces in)."""
    h, c = std.states["h"], std.states.get("c")
    finals = f"{h!r}: {final_h}" + (f", {c!r}: {final_c}" if c else "")
    outs = ", ".join(f"{o!r}: y" for o in std.outputs)
    return f"    return _Run(outputs={{{outs}}}, states={{}}, final={{{finals}}})"


def _step_values(fname: str, loop_fname: str, std, masked: bool) -> list:
    """Generation's step module on one step's values (`codegen.Emitter.step_values`): x (B, I),
    [the step mask (B,),] states and outputs (B, H); torch's cell kernel, once, with the packed
    weights kept in `_CACHE` while generation steps."""
    lines = _prologue(fname, loop_fname, std, "mask__in, " if masked else "", True)
    return lines + ["    " + x for x in _cell_kernel(std, masked, True)] + [_finish(std, "h1", "c1")]


def fused_cell(fname: str, loop_fname: str, std, sizes: dict, masked: bool = False, step: bool = False) -> list:
    """`step`: generation's step module, on one step's values (`codegen.Emitter.step_values`)."""
    if step:
        return _step_values(fname, loop_fname, std, masked)
    if masked:
        return _fused_lengths(fname, loop_fname, std)
    c = std.states.get("c")
    lines = _prologue(fname, loop_fname, std, "", False) + _one_step(std, False) + _initial(std)
    lines.append("    x = x__in.flip(1) if reverse__ else x__in")
    hx = "(h0, c0)" if c else "h0"
    outs = "y, h_n, c_n" if c else "y, h_n"
    lines.append(f"    {outs} = torch._VF.{std.kind}(x, {hx}, (w_ih, w_hh, b_ih, b_hh), True, 1, 0.0, "
                 f"torch.is_grad_enabled(), False, True)")
    lines.append("    y = y.flip(1) if reverse__ else y")
    lines.append(_finish(std, "h_n[0]", "c_n[0]"))
    return lines


def _fused_lengths(fname: str, loop_fname: str, std) -> list:
    """With lengths: the kernel over the padded batch (`_run_padded`) or stretch by stretch on the
    samples still running (`_run_by_length`), each sample reversed within its length for a
    reversed run."""
    c = std.states.get("c")
    lines = _prologue(fname, loop_fname, std, "mask__in, ", False) + _one_step(std, True) + _initial(std)
    hx = "[h0, c0]" if c else "[h0]"
    lines += [
        "    lengths = mask__in.sum(1).to(torch.int64)",
        "    x = _flip_within(x__in, lengths) if reverse__ else x__in",
    ]
    by_length = (f"y, finals = _run_by_length({std.kind!r}, x, {hx}, (w_ih, w_hh, b_ih, b_hh), lengths, "
                 "torch.is_grad_enabled())")
    if std.kind == "rnn_relu":  # unbounded: its padding could overflow, and 0 * inf in a gradient is NaN
        lines += ["    " + by_length]
    else:
        # (an LSTM's saturated gates need float32 or float64: `_saturates`)
        lines += [
            f"    if {'_saturates(x__in) and ' if std.kind == 'lstm' else ''}(x__in.device.type != 'cpu' "
            "or not torch.is_grad_enabled()",
            f"            or torch.unique(lengths).numel() > {MAX_STRETCHES}):",
            f"        y, finals = _run_padded({std.kind!r}, x, {hx}, (w_ih, w_hh, b_ih, b_hh), lengths, "
            "torch.is_grad_enabled())",
            "    else:  # one call per stretch of steps over which no sample ends",
            "        " + by_length]
    lines += [
        "    y = _flip_within(y, lengths) if reverse__ else y",
    ]
    lines.append(_finish(std, "finals[0][0]", "finals[1][0]"))
    return lines

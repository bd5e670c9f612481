"""What a hostile case runs, inside its child process (see runner.py).

Each action takes the case's payload (plain data) and returns a short summary, or raises.
An `AssertionError` means a wrong answer (e.g. compiled code disagreeing with the reference
interpreter); any other exception is judged against the case's expectation.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

import seqdsl
from seqdsl import interpret

ROOT = Path(__file__).resolve().parents[2]
ACTIONS: dict = {}


def action(f):
    ACTIONS[f.__name__] = f
    return f


def _source(src):
    """The first argument of load/compile: ('path', rel) str path, ('pathobj', rel) Path,
    ('text', s) / ('bytes', b) source, ('spec', 'lstm') a bundled spec's Path, ('raw', x) as is."""
    kind, value = src
    if kind == "path":
        return value
    if kind == "pathobj":
        return Path(os.fsdecode(value))
    if kind == "spec":
        return ROOT / "specs" / f"{value}.seq"
    if kind in ("text", "bytes", "raw"):
        return value
    if kind == "textkw":
        return None
    raise ValueError(kind)


def _load(p):
    src = p.get("src", ("path", "spec.seq"))
    kw = dict(p.get("kw", {}))
    if src[0] == "textkw":
        kw["text"] = src[1]
        return seqdsl.load(sizes=p.get("sizes"), **kw)
    return seqdsl.load(_source(src), p.get("sizes"), **kw)


def _example(exe, batch=2, steps=4, seed=0):
    return exe.example_inputs(batch=batch, steps=steps, seed=seed)


def _close(what, got, want, tol=1e-10):
    assert set(got) == set(want), f"{what}: keys {sorted(got)} vs reference {sorted(want)}"
    for k in want:
        g = np.asarray(got[k].detach().numpy() if hasattr(got[k], "detach") else got[k], dtype=np.float64)
        w = np.asarray(want[k], dtype=np.float64)
        assert g.shape == w.shape, f"{what} {k}: shape {g.shape} vs reference {w.shape}"
        err = float(np.max(np.abs(g - w) / (1 + np.abs(w)))) if w.size else 0.0
        assert err <= tol, f"{what} {k}: differs from the reference interpreter by {err:.3g}"


def reference_check(program, name=None, backends=("numpy", "torch"), steps=4, batch=2):
    """Compile at float64 on each backend and compare with interpret.run; returns 'equal'."""
    name = name or program.main.name
    exe = seqdsl.compile(program, backend="numpy", name=name, dtype="float64")
    exe.init_params(1)
    params = {k: np.asarray(v) for k, v in exe.params.items()}
    inputs = _example(exe, batch, steps)
    want_out, want_fin = interpret.run(program, name, None, params, inputs)
    if "numpy" in backends:
        out, fin = exe(**inputs)
        _close("numpy outputs", out, want_out)
        _close("numpy final", fin, want_fin)
    if "torch" in backends:
        import torch

        for fused in (True, False):
            m = seqdsl.compile(program, backend="torch", name=name, dtype="float64", fused=fused)
            with torch.no_grad():
                for k, v in m.params.items():
                    v.copy_(torch.from_numpy(params[k]))
            tin = {k: torch.from_numpy(np.asarray(v)) for k, v in inputs.items()}
            out, fin = m(**tin)
            _close(f"torch{'' if fused else ' (loop)'} outputs", out, want_out)
            _close(f"torch{'' if fused else ' (loop)'} final", fin, want_fin)
    return "equal"


@action
def spec(p):
    """Load (and then, per p['then'], specialize / compile / run / compare / render) a spec."""
    program = _load(p)
    done = [f"loaded {list(program.definitions)}"]
    name = p.get("name")
    for step in p.get("then", ()):
        if step == "specialize":
            program.specialize(name or program.main.name, p.get("sizes"))
        elif step.startswith("compile"):
            backend = step.split(":")[1] if ":" in step else "numpy"
            exe = seqdsl.compile(program, backend=backend, name=name, sizes=p.get("sizes"))
            done.append(f"compiled {backend}")
        elif step == "run":
            out, _ = exe(**_example(exe))
            for k, v in out.items():
                arr = v.detach().numpy() if hasattr(v, "detach") else v
                assert np.isfinite(arr).all(), f"output {k} is not finite"
            done.append("ran")
        elif step == "ref":
            done.append(reference_check(program, name, tuple(p.get("backends", ("numpy", "torch")))))
        elif step == "render":
            from seqdsl.render import to_dot

            for view in ("rolled", "unrolled"):
                to_dot(program, name, view, p.get("steps", 4))
            done.append("rendered")
        elif step == "param_count":
            done.append(f"params {program.definitions[name or program.main.name].param_count}")
        else:
            raise ValueError(step)
    return "; ".join(done)


@action
def compile_(p):
    """seqdsl.compile straight from a source (path/text), with options."""
    exe = seqdsl.compile(_source(p.get("src", ("path", "spec.seq"))), **p.get("kw", {}))
    if p.get("run"):
        exe(**_example(exe))
    return f"compiled {exe.name}"


ACTIONS["compile"] = compile_


@action
def refcheck(p):
    """Class (d): the spec is refused with a position, or compiled == reference on both backends."""
    from seqdsl.errors import SpecError

    try:
        program = _load(p)
    except SpecError as e:
        _must_be_positioned(e)
        return f"refused: {str(e).splitlines()[0]}"
    try:
        return reference_check(program, p.get("name"))
    except SpecError as e:
        _must_be_positioned(e)
        return f"refused at compile: {str(e).splitlines()[0]}"


def _must_be_positioned(e):
    import re

    first = str(e).splitlines()[0]
    if not re.match(r"^.+:\d+:\d+: error: ", first) or e.line < 1:
        raise e


@action
def cli(p):
    """seqdsl.cli.main(argv) in this process; stdout/stderr are the captured fds."""
    from seqdsl.cli import main

    try:
        rc = main(list(p["argv"]))
    except SystemExit as e:
        rc = e.code if isinstance(e.code, int) else 1
    except BaseException:
        import traceback

        traceback.print_exc()
        rc = 1
    sys.stdout.flush()
    sys.stderr.flush()
    return {"rc": rc}


@action
def cli_fsize(p):
    """The CLI with writes capped at p['fsize'] bytes: a write that fails half-way."""
    import resource

    resource.setrlimit(resource.RLIMIT_FSIZE, (p["fsize"], p["fsize"]))
    return cli(p)


@action
def cli_nodot(p):
    """The CLI with no graphviz `dot` on PATH."""
    os.environ["PATH"] = "/nonexistent"
    return cli(p)


@action
def cli_proc(p):
    """`python -m seqdsl ARGV` as a real process (its stderr goes to the captured fd 2)."""
    import subprocess

    env = {**os.environ, **p.get("env", {})}
    argv = [sys.executable, "-m", "seqdsl", *[os.fsencode(a) for a in p["argv"]]]
    if p.get("close_stdout"):  # `seqdsl ir spec.seq | head -0`: the reader goes away at once
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, env=env)
        proc.stdout.close()
        return {"rc": proc.wait(timeout=p.get("timeout", 60))}
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, timeout=p.get("timeout", 60), env=env)
    return {"rc": r.returncode}


# ---- executables: inputs, states, weights ---------------------------------------------------------
def _exe(p):
    src = p["spec"]
    source = ROOT / "specs" / f"{src[1]}.seq" if src[0] == "spec" else src[1]
    return seqdsl.compile(source, backend=p.get("backend", "numpy"), name=p.get("name"),
                          dtype=p.get("dtype", "float32"), fused=p.get("fused", True))


def _value(desc, exe, base):
    """Build an argument from a descriptor (plain data)."""
    kind, *a = desc
    if kind == "py":
        return a[0]
    if kind == "arr":  # shape, dtype, fill
        shape, dtype, fill = a
        if dtype in ("complex", "str", "object"):
            return np.full(shape, fill, dtype={"complex": complex, "str": "U3", "object": object}[dtype])
        return np.full(shape, fill, dtype=dtype)
    if kind == "tensor":
        import torch

        shape, dtype, fill = a
        return torch.full(shape, fill, dtype=getattr(torch, dtype))
    if kind == "base":  # an example input, as is / transformed
        name, how = a[0], (a[1] if len(a) > 1 else None)
        v = base[name]
        if how is None:
            return v
        if how == "numpy":
            return v.numpy() if hasattr(v, "numpy") else v
        if how == "list":
            return (v.numpy() if hasattr(v, "numpy") else v).tolist()
        if how == "float16":
            return v.half() if hasattr(v, "half") else v.astype(np.float16)
        if how == "float64":
            return v.double() if hasattr(v, "double") else v.astype(np.float64)
        if how == "int32":
            return v.int() if hasattr(v, "int") else v.astype(np.int32)
        if how == "float":
            return v.float() if hasattr(v, "float") else v.astype(np.float32)
        if how == "T":
            return v.transpose(0, 1) if hasattr(v, "transpose") and hasattr(v, "detach") else v.swapaxes(0, 1)
        if how == "drop_batch":
            return v[0]
        if how == "add_axis":
            return v[None]
        if how == "batch1":
            return v[:1]
        if how == "batch0":
            return v[:0]
        if how == "steps0":
            return v[:, :0]
        if how == "noncontig":
            return v[:, ::-1] if not hasattr(v, "detach") else v.flip(1).transpose(0, 1).transpose(0, 1)
        if how == "nan":
            v = v.clone() if hasattr(v, "clone") else v.copy()
            v[...] = float("nan")
            return v
        if how == "bool":
            return v > 0
        raise ValueError(how)
    raise ValueError(kind)


@action
def call(p):
    """Call an executable with example inputs, modified as p says; expect the boundary to refuse."""
    exe = _exe(p)
    base = _example(exe, p.get("batch", 2), p.get("steps", 4))
    inputs = dict(base)
    for k in p.get("drop", ()):
        inputs.pop(k)
    for k, desc in p.get("set", {}).items():
        inputs[k] = _value(desc, exe, base)
    state = p.get("state")
    if state is not None:
        state = ({k: _value(d, exe, base) for k, d in state.items()} if isinstance(state, dict)
                 else _value(state, exe, base))
    how = p.get("how", "call")
    if how == "call":
        out, fin = exe(**inputs, state=state) if state is not None else exe(**inputs)
    elif how == "grad":
        out, fin = exe(**base)
        d_out = {k: _value(d, exe, {**base, **{f"out.{n}": v for n, v in out.items()}})
                 for k, d in p.get("d_out", {}).items()}
        exe.value_and_grad(inputs, d_out, None, state=state)
    else:
        raise ValueError(how)
    return "accepted"


@action
def example(p):
    exe = _exe(p)
    ins = exe.example_inputs(**p["kw"])
    return {k: tuple(v.shape) for k, v in ins.items()}


@action
def weights(p):
    """Save or load an executable's weights (p['op']), with an optional file-size cap to make a
    write fail half-way."""
    import resource

    exe = _exe(p)
    op = p["op"]
    target = p["target"]
    if p.get("fsize"):
        resource.setrlimit(resource.RLIMIT_FSIZE, (p["fsize"], p["fsize"]))
    if op == "save":
        exe.save(target)
    elif op == "load":
        exe.load(target)
        if p.get("check_finite"):
            for k, v in exe.params.items():
                arr = v.detach().numpy() if hasattr(v, "detach") else v
                assert np.isfinite(arr).all(), f"loaded parameter {k} is not finite"
    elif op == "roundtrip":
        before = {k: (v.detach().numpy().copy() if hasattr(v, "detach") else v.copy()) for k, v in exe.params.items()}
        exe.save(target)
        exe.init_params(7)
        exe.load(target)
        for k, v in exe.params.items():
            arr = v.detach().numpy() if hasattr(v, "detach") else v
            assert np.array_equal(arr, before[k]), f"parameter {k} changed in a save/load round trip"
    else:
        raise ValueError(op)
    return "done"


# ---- rendering ----------------------------------------------------------------------------------
@action
def render(p):
    from seqdsl.cli.cmd_render import write
    from seqdsl.render import to_dot

    program = _load(p)
    text = to_dot(program, p.get("name"), p.get("view", "rolled"), p.get("steps", 4), p.get("detail"),
                  p.get("shapes", False))
    if p.get("check_dot"):
        _check_dot_text(text)
    if p.get("output"):
        write(text, Path(p["output"]))
    return f"{len(text)} bytes of DOT"


def _check_dot_text(text):
    """Labels are escaped and ids generated: every line is a known statement shape."""
    import re

    node = re.compile(r'^\s*(n\d+|cluster_\d+)?( -> n\d+)?(\s*\[.*\])?;?$|^\s*subgraph cluster_\d+ \{$|^\s*\}$'
                      r'|^\s*\w+="(?:[^"\\]|\\.)*";$|^digraph "(?:[^"\\]|\\.)*" \{$|^\s*(node|edge) \[.*\];$'
                      r'|^\s*\{rank=same;( n\d+;)+\}$')
    for line in text.splitlines():
        assert node.match(line), f"unexpected DOT line (unescaped label or raw id?): {line[:200]}"
    try:
        import graphviz

        graphviz.Source(text).pipe(format="svg")
    except Exception as e:  # noqa: BLE001
        raise AssertionError(f"dot rejects the generated text: {e}") from None


# ---- odd API calls ------------------------------------------------------------------------------
@action
def api(p):
    return SCENARIOS[p["scenario"]](*p.get("args", ()))


def _s_program_sizes(spec, sizes):
    program = seqdsl.load(ROOT / "specs" / f"{spec}.seq", sizes)
    assert getattr(program, "sizes", None) == sizes, f"Program.sizes is {getattr(program, 'sizes', None)!r}"
    return "ok"


def _s_compile_loaded(spec, sizes, key, shape):
    program = seqdsl.load(ROOT / "specs" / f"{spec}.seq", sizes)
    exe = seqdsl.compile(program)
    assert tuple(exe.params[key].shape) == tuple(shape), f"{key}: {exe.params[key].shape} != {shape}"
    return "ok"


def _s_load_twice_same(text):
    a = seqdsl.load(text)
    b = seqdsl.load(text)
    assert list(a.definitions) == list(b.definitions)
    return "ok"


def _s_sizes_bad(sizes):
    seqdsl.load(ROOT / "specs" / "lstm.seq", sizes)
    return "accepted"


def _s_load_kw(kw):
    seqdsl.load(**kw)
    return "accepted"


def _s_dot_fails():
    """dot rejecting its input: the error says why (dot's own message)."""
    from seqdsl.cli.cmd_render import write

    write('digraph "x" {\n  n0 -> ;\n}\n', Path("x.svg"))
    return "accepted"


SCENARIOS = {
    "dot_fails": _s_dot_fails,
    "program_sizes": _s_program_sizes,
    "compile_loaded": _s_compile_loaded,
    "load_twice_same": _s_load_twice_same,
    "sizes_bad": _s_sizes_bad,
    "load_kw": _s_load_kw,
}


def _warm_up() -> None:
    """Run once in the fork server (which imports this module): build the parser and import the
    backends and renderer, so that each forked case starts warm instead of paying for it."""
    try:
        import seqdsl.cli  # noqa: F401
        from seqdsl.render import to_dot

        text = ("cell W(I = 2, H = 2) {\n    in x: [I]\n    state h: [H] = zeros\n    param U: [H, H]\n"
                "    h = tanh(U @ h[t-1] + x)\n    out y = h\n}\n")
        program = seqdsl.load(text=text)
        seqdsl.compile(program)
        to_dot(program, None, "rolled")
        to_dot(program, None, "unrolled")
        try:
            seqdsl.compile(program, backend="torch")
        except ImportError:
            pass
    except Exception:  # noqa: BLE001 — a warm-up must never break the suite
        pass


_warm_up()
# the fork server's objects are never garbage in a case: keep the collector away from them, so a
# child's first collection does not touch (and copy-on-write) the whole preloaded heap
__import__("gc").freeze()

"""Backends: the registry and `compile_program`, shared by the API and the CLI.

In:  a spec (path, text or `Program`), a backend name, sizes, a definition name, dtype.
Out: an executable (NumPy) or an nn.Module (torch) following docs/api.md, or the
     generated source (`generate_source`).
"""

from __future__ import annotations

from pathlib import Path

from ..errors import SpecError, did_you_mean

BACKENDS = {"numpy": "seqdsl.backends.numpy", "torch": "seqdsl.backends.torch"}
DTYPES = ("float32", "float64")


def _emitter(backend: str):
    import importlib

    if backend not in BACKENDS:
        raise SpecError(f"unknown backend '{backend}'", None,
                        did_you_mean(backend, BACKENDS) or f"choose one of: {', '.join(BACKENDS)}")
    return importlib.import_module(BACKENDS[backend]).EMITTER


def _program(source, sizes):
    from ..program import Program, load

    if isinstance(source, Program):
        return source, source.top_file
    program = load(source, sizes)
    return program, program.top_file


def generate_source(source, backend: str = "numpy", sizes=None, name=None, dtype: str = "float32",
                    fused: bool = True):
    """(program, definition, generated module text). `fused=False` keeps standard cells on the
    generated loop instead of a vendor kernel (torch backend)."""
    from .codegen import Codegen

    if dtype not in DTYPES:
        raise SpecError(f"unknown dtype '{dtype}'", None, f"choose one of: {', '.join(DTYPES)}")
    emitter = _emitter(backend)
    program, file = _program(source, sizes)
    if name is None:
        defn = program.main
    elif name in program.definitions:
        defn = program.definitions[name]
    else:
        raise SpecError(f"no definition named '{name}'", None, did_you_mean(name, program.definitions))
    given = {k: v for k, v in (sizes or {}).items() if k in defn.sizes}
    code = Codegen(program, emitter, dtype, fused).module(defn.name, given, Path(file).name if file else "<string>")
    return program, defn, code


def compile_program(source, backend="numpy", sizes=None, name=None, dtype="float32", fused=True, **options):
    from .runtime import NumpyExecutable, exec_module

    if options:
        raise SpecError(f"unknown compile option(s): {', '.join(sorted(options))}", None,
                        "options are backend, sizes, name, dtype and fused")
    program, defn, code = generate_source(source, backend, sizes, name, dtype, fused)
    filename = f"<seqdsl:{Path(program.top_file).name}:{defn.name}:{backend}>"
    ns = exec_module(code, filename)
    if backend == "numpy":
        return NumpyExecutable(code, ns, filename)
    from .torch_module import make_module

    return make_module(code, ns, filename)

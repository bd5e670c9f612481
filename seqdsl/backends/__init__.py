"""Backends: the registry and `compile_program`, shared by the API and the CLI.

In:  a spec (path, text or `Program`), a backend name, sizes, a definition name, dtype.
Out: an executable (NumPy) or an nn.Module (torch) following docs/api.md, or the
     generated source (`generate_source`). A `Program` compiles at the sizes it was loaded
     with (`load(path, sizes=...)`), overridden by `sizes` given here.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import SpecError, did_you_mean
from .vocab import token_vocab

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


def loaded_sizes(program, defn) -> dict:
    """The sizes `load(..., sizes=...)` gave `defn`: `program.sizes` when the Program keeps them,
    else recovered from the definition's bound sizes (the fewest that reproduce them)."""
    from ..size_exprs import size_env
    from ..sizes import Size

    kept = getattr(program, "sizes", None)
    if isinstance(kept, dict):
        return {k: v for k, v in kept.items() if k in defn.sizes}
    given: dict = {}
    for p in defn.ast.params:
        bound = defn.sizes.get(p.name)
        value = bound.value if isinstance(bound, Size) else bound
        if value is None:
            continue
        if size_env(defn.ast, given).get(p.name) != bound:
            given[p.name] = value
    return given


def dim_names(defn) -> dict:
    """The spec's names for the dims of each input, memory and state ("I", "4*H"), for messages."""
    from .. import ast as A
    from ..size_exprs import SizeScope, symbolic_env

    own = SizeScope(defn.ast, symbolic_env(defn.ast))
    dims, memories = {}, []
    for s in defn.ast.body:
        if isinstance(s, (A.InDecl, A.MemDecl, A.StateDecl)):
            if isinstance(s, A.MemDecl):
                memories.append(s.name)
            try:
                dims[s.name] = tuple(str(own.size(d)) for d in s.type.dims)
            except SpecError:
                pass
    return {"dims": dims, "memories": memories}


def generate_source(source, backend: str = "numpy", sizes=None, name=None, dtype: str = "float32",
                    fused: bool = True):
    """(program, definition, generated module text). `fused=False` keeps standard cells on the
    generated loop instead of a vendor kernel (torch backend)."""
    from .codegen import Codegen

    if dtype not in DTYPES:
        raise SpecError(f"unknown dtype '{dtype}'", None, f"choose one of: {', '.join(DTYPES)}")
    if name is not None and not isinstance(name, str):
        raise SpecError(f"the argument name must be a definition name (a str), got {type(name).__name__} {name!r}",
                        None, "pass name=\"RNN\", or leave it out for the file's main definition")
    emitter = _emitter(backend)
    program, file = _program(source, sizes)
    if name is None:
        defn = program.main
    elif name in program.definitions:
        defn = program.definitions[name]
    else:
        raise SpecError(f"no definition named '{name}'", None, did_you_mean(name, program.definitions))
    given = _given(program, defn, sizes)
    code = Codegen(program, emitter, dtype, fused).module(defn.name, given, Path(file).name if file else "<string>")
    return program, defn, code


def _given(program, defn, sizes) -> dict:
    return {**loaded_sizes(program, defn), **{k: v for k, v in (sizes or {}).items() if k in defn.sizes}}


def compile_program(source, backend="numpy", sizes=None, name=None, dtype="float32", fused=True, **options):
    from .runtime import NumpyExecutable, exec_module

    if options:
        raise SpecError(f"unknown compile option(s): {', '.join(sorted(options))}", None,
                        "options are backend, sizes, name, dtype and fused")
    program, defn, code = generate_source(source, backend, sizes, name, dtype, fused)
    filename = f"<seqdsl:{Path(program.top_file).name}:{defn.name}:{backend}>"
    ns = exec_module(code, filename)
    symbols = dim_names(defn)
    g = program.specialize(defn.name, _given(program, defn, sizes))
    symbols["vocab"] = {n: token_vocab(program, g, n) for n, (*_, dtype, _seq, _v) in ns["INPUTS"].items()
                        if dtype == "int"}
    if backend == "numpy":
        return NumpyExecutable(code, ns, filename, symbols)
    from .torch_module import make_module

    return make_module(code, ns, filename, symbols)

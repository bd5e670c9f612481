"""Backends: the registry of code generators, and what the compile driver asks of a definition.

In:  a backend name; a loaded `Program` and one of its definitions.
Out: `emitter_for(name)` → the backend's `codegen.Emitter` (its op → emitter table and hooks;
     an unknown name is a `SpecError` that lists the backends); `loaded_sizes` (the sizes a
     `Program` was loaded with, which a compile keeps unless it overrides them) and
     `dim_names` (the spec's names of each input's dims, for run-time messages). The compile
     itself is `seqdsl.driver`.
"""

from __future__ import annotations

from ..errors import SpecError, did_you_mean

BACKENDS = {"numpy": "seqdsl.backends.numpy", "torch": "seqdsl.backends.torch"}
DTYPES = ("float32", "float64")


def emitter_for(backend: str):
    import importlib

    if backend not in BACKENDS:
        raise SpecError(f"unknown backend '{backend}'", None,
                        did_you_mean(backend, BACKENDS) or f"choose one of: {', '.join(BACKENDS)}")
    return importlib.import_module(BACKENDS[backend]).EMITTER


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

"""From options to what a run trains: the program, the data, the sizes bound from the data's
vocabularies, and the compiled executable.

In:  the run's `Options`, and the vocabularies to reuse (a resumed run's DIR/vocab.json), or None.
Out: `prepare(opts, vocabs)` → `Prepared(exe, fields, train, valid, sizes, bound)`: `exe` compiled
     for `opts.backend` at `sizes` (the sizes given, plus `bound`: those bound from the data),
     parameters drawn from `opts.seed`; `train`/`valid` datasets (`seqdsl.data.load_dataset`).
     `bind_vocab_sizes(...)` is the rule by itself. `file_hash(path)` → the SHA-256 of a file.

The rule for vocabulary sizes: a field whose values are token ids read through a vocabulary (text
in the data) takes as many ids as the spec says (`embed(src, Vs, E)`: Vs; `categorical(linear(h,
Vt))`: Vt). The size that says it is found by compiling the definition at its default sizes (plus
those given) and reading each field's number of classes: the size whose value that is (when several
sizes have that value, one more compile with them made different tells which). Unless given, that
size is set to the vocabulary's size; a size two fields share gets the larger vocabulary. A field
whose number of classes no size names (a literal `2`, an expression), or whose size is given, keeps
it, and a vocabulary larger than it is an error that says what to set.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from ..errors import SpecError, did_you_mean


@dataclass
class Prepared:
    exe: object
    fields: dict
    train: object
    valid: object
    sizes: dict
    bound: dict


def file_hash(path) -> str:
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    except OSError as e:
        raise SpecError(f"cannot read {path}: {e.strerror or e}") from None
    return h.hexdigest()


def _compile(program, name, backend, sizes, dtype, fused: bool = True):
    from ..driver import compile_program

    return compile_program(program, backend=backend, sizes=sizes or None, name=name, dtype=dtype, fused=fused)


def load_program(opts):
    """(program, definition name): the model to train, which must predict something."""
    from pathlib import Path

    from ..program import load

    program = load(Path(opts.spec))
    name = opts.name or program.main.name
    if name not in program.definitions:
        raise SpecError(f"no definition named '{name}' in {opts.spec}", None, did_you_mean(name, program.definitions))
    unknown = sorted(set(opts.sizes) - set(program.definitions[name].sizes))
    if unknown:
        raise SpecError(f"{name} has no size {', '.join(map(repr, unknown))}; its sizes are: "
                        f"{', '.join(program.definitions[name].sizes) or 'none'}")
    return program, name


def _sizes_of_fields(program, name, given: dict, base: dict, fields: dict, names: list, dtype: str) -> dict:
    """{field: the size that sets its number of classes} for the fields `names`: every size whose value
    (in `base`) is one of their numbers of classes is made different, and one compile tells which
    moved which. Should that compile fail (a size with constraints), a value only one size has is
    taken as that size."""
    from ..data import spec_fields

    cands = sorted({s for f in names for s, v in base.items() if v == fields[f].classes})
    trial = dict(given)
    for i, s in enumerate(cands):
        trial[s] = base[s] + 1 + i
    try:
        moved = spec_fields(_compile(program, name, "numpy", trial, dtype)) if cands else {}
    except SpecError:
        unique = {v: [s for s in cands if base[s] == v] for v in {base[s] for s in cands}}
        return {f: unique[fields[f].classes][0] for f in names if len(unique.get(fields[f].classes, ())) == 1}
    return {f: s for f in names for s in cands if f in moved and moved[f].classes == trial[s]}


def bind_vocab_sizes(program, name, given: dict, probe, fields: dict, counts: dict, dtype: str) -> dict:
    """{size: value} binding each vocabulary size from the data (`counts`: field → vocabulary size)."""
    names = [f for f in counts if f in fields and fields[f].classes is not None]
    sizes = _sizes_of_fields(program, name, given, dict(probe.sizes), fields, names, dtype)
    bound: dict = {}
    for field in names:
        need, classes, size = counts[field], fields[field].classes, sizes.get(field)
        if size and size not in given:
            bound[size] = max(bound.get(size, 0), need)
        elif need > classes:
            what = f"{size}={classes}, which you set" if size else f"{classes}, fixed in the spec"
            hint = (f"set {size} to at least {need} (--set {size}={need})" if size else
                    "make the spec's number of classes a size, or use a smaller vocabulary")
            raise SpecError(f"the vocabulary of field '{field}' has {need} tokens, but {name} takes {what} "
                            f"(ids 0 to {classes - 1})", None, hint)
    return bound


def prepare(opts, vocabs=None) -> Prepared:
    from ..data import load_dataset, spec_fields

    program, name = load_program(opts)
    probe = _compile(program, name, "numpy", opts.sizes, opts.dtype)
    if not probe._ns["PREDICTED"]:
        raise SpecError(f"{name} predicts nothing, so there is nothing to learn", None,
                        "declare what it predicts with '~', e.g. out y ~ categorical(linear(h, V)) (docs/language.md)")
    fields = spec_fields(probe)
    common = dict(tokens=opts.tokens, mapping=opts.mapping or None, max_len=opts.max_len, seq_len=opts.seq_len)
    train = load_dataset(opts.data, fields, vocabs=vocabs, **common)
    valid = load_dataset(opts.valid, fields, vocabs=train.vocabs, **common) if opts.valid else None
    counts = {k: train.vocab_size(k) for k in train.vocabs}
    bound = bind_vocab_sizes(program, name, opts.sizes, probe, fields, counts, opts.dtype)
    sizes = {**opts.sizes, **bound}
    if opts.backend == "numpy" and not bound:
        exe = probe
    else:
        exe = _compile(program, name, opts.backend, sizes, opts.dtype, opts.fused)
    exe.init_params(opts.seed)
    return Prepared(exe, fields, train, valid, dict(exe.sizes), bound)

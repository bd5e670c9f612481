"""Load: a spec file (or text) and its imports → a checked `Program`.

In:  a path or `.seq` text (see `load` for how the two are told apart), and optional size
     overrides {name: int}.
Out: `Program` with `.definitions` (name → `Definition`, each exposing `.graph`, its IR
     with sizes bound to the overrides/defaults and symbolic otherwise), `.main` (the
     last definition of the top file), `.sizes` (the overrides given to `load`), `.warnings`,
     `.specialize(name, sizes)` for a graph with every size concrete (what the backends
     compile) and `.instance(name, env)` for one with sizes bound to possibly symbolic values
     (what the renderer draws), `.imports` (an `Import` for each file a `use` read: where it
     was found and the same-named files it shadows).

Imports (`use "lstm.seq"`) are looked for beside the importing file first, then in each folder
of SEQDSL_PATH (os.pathsep-separated; entries that do not exist or are not folders are skipped,
and named if the import is not found), then in the bundled library `seqdsl/lib/` (`LIBRARY`);
the first found is read (`search_path`). Names with '..' or absolute names are looked for only
beside the importing file. Every file stays inside the tree it was found in: an import may not
leave the top spec's folder, nor a library folder, by '..', an absolute name or a symlink. Imports
may not form a cycle; a missing import is reported with every folder searched.

Reading is defensive: only regular files are opened (a FIFO, device or folder is refused
before `open`, and the descriptor is checked again after), at most `MAX_SOURCE_BYTES + 1`
bytes are read, and file names that are not UTF-8 are shown with backslash escapes. The work
one load (or one `specialize`) may do is bounded: at most `MAX_PROGRAM_NODES` IR nodes in all
(estimated from the AST before a `repeat` is expanded, counted after each lowering), and at
most `MAX_PARAM_ELEMENTS` parameter elements per definition, including those of the cells
and blocks it runs. Initializer scales, constants and initial states must be finite.
"""

from __future__ import annotations

import errno
import numbers
import os
import stat
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from . import ast as A
from .check import check_graph, summary
from .errors import Span, SpecError, closest, did_you_mean
from .lower import lower
from .lower_runs import interface_of
from .ops import Op
from .parse import MAX_SOURCE_BYTES, parse
from .scalars import check_number, check_scale
from .size_exprs import SizeScope, size_env
from .sizes import Size

MAX_IMPORTS = 64
MAX_PROGRAM_NODES = 10_000  # IR nodes lowered by one load or one specialize, all definitions together
RECURSION_LIMIT = 10_000  # while lowering (lower.py recurses through equations; see _deep_recursion)
MAX_PARAM_ELEMENTS = 1 << 27  # parameter elements of one definition, with those of what it runs

# a lower bound on the IR nodes each kind of expression lowers to (for the estimate before lowering)
_CALL_NODES = {"linear": 4, "layernorm": 3, "embed": 2}
_VALUE_ARGS = {"linear": 1, "embed": 1, "onehot": 1, "split": 1, "positions": 0, "attention": 3, "layernorm": 1,
               "clip": 1, "dropout": 1}


@dataclass
class Definition:
    name: str
    kind: str
    ast: A.Definition
    file: str
    graph: object
    sizes: dict
    program: "Program" = field(repr=False, default=None)

    def summary(self) -> dict:
        return summary(self.graph, self.program)

    @property
    def param_count(self) -> int | None:
        """Number of trained values, including those of the cells and blocks it runs."""
        return self.program.param_count(self.graph)


class Program:
    def __init__(self, asts: dict, top_file: str, order: list, sizes: dict | None = None):
        self.asts = asts  # name -> (ast.Definition, file)
        self.top_file = top_file
        self.order = order
        self.sizes: dict = dict(sizes or {})  # the size overrides given to load()
        self.definitions: dict = {}
        self.warnings: list = []
        self.imports: list = []  # an `Import` for each file a `use` read: where it was found, what it shadows
        self._interfaces: dict = {}
        self._instances: dict = {}
        self._work = 0  # IR nodes lowered by the current operation
        self._depth = 0

    # ---- the work budget ---------------------------------------------------------------------
    @contextmanager
    def _operation(self):
        """One public operation (load, specialize, instance): its lowering shares one budget."""
        if self._depth == 0:
            self._work = 0
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1

    def _lower(self, defn: A.Definition, env: dict, resolve):
        estimate = _estimate(defn, env)
        if estimate is not None and self._work + estimate[0] > MAX_PROGRAM_NODES:
            raise SpecError(f"{defn.name} expands to at least {estimate[0]} IR nodes"
                            + (f" (with {self._work} already lowered)" if self._work else "")
                            + f"; the limit is {MAX_PROGRAM_NODES}", estimate[1],
                            "use fewer repeats or layers; a program this large would take minutes to compile")
        try:
            with _deep_recursion():
                g = lower(defn, env, resolve)
        except RecursionError:
            raise SpecError(f"{defn.name} is too deeply nested to lower (its equations depend on each other "
                            "through too long a chain)", defn.span,
                            "write the equations in the order they are computed, or split the definition") from None
        except SpecError as e:
            if e.line:
                raise
            # an error with no position of its own (e.g. a size too complex): point at the definition
            raise SpecError(e.message, defn.span, e.hint) from None
        self._work += g.number_of_nodes()
        if self._work > MAX_PROGRAM_NODES:
            raise SpecError(f"{defn.name} lowers to {g.number_of_nodes()} IR nodes"
                            + (f" ({self._work} with what was lowered before it)" if self._work > g.number_of_nodes()
                               else "") + f"; the limit is {MAX_PROGRAM_NODES}", defn.span,
                            "use fewer repeats or layers; a program this large would take minutes to compile")
        _check_values(g)
        return g

    # ---- interfaces (types in the callee's own size names) for runs in models ------------------
    def resolve(self, name: str, span):
        if name == "*":
            return list(self.asts)
        if not isinstance(name, str) or name not in self.asts:
            return None
        if name not in self._interfaces:
            defn = self.asts[name][0]
            self._interfaces[name] = None  # guards against recursive use
            with self._operation():
                g = self._lower(defn, size_env(defn, None, symbolic=True), self.resolve)
            self._interfaces[name] = interface_of(defn, g)
        iface = self._interfaces[name]
        if iface is None:
            raise SpecError(f"{name} runs itself", span)
        return iface

    def instance(self, name: str, env: dict):
        """The IR of `name` with its sizes bound to `env` (Sizes, possibly symbolic, or flags)."""
        key = (name, tuple(sorted((k, str(v)) for k, v in env.items())))
        if key not in self._instances:
            if name not in self.asts:
                raise SpecError(f"no definition named '{name}'", None, did_you_mean(str(name), self.asts))
            with self._operation():
                self._instances[key] = self._lower(self.asts[name][0], dict(env), self.resolve)
        return self._instances[key]

    def specialize(self, name: str, sizes: dict | None = None):
        """The IR of `name` with sizes bound (given, else defaults); all must be concrete."""
        if not isinstance(name, str) or name not in self.asts:
            raise SpecError(f"no definition named '{name}'", None, did_you_mean(str(name), self.asts))
        defn = self.asts[name][0]
        env = size_env(defn, _check_sizes(sizes, flags=True))
        for p, v in env.items():
            if isinstance(v, Size) and v.value is None:
                raise SpecError(f"size '{p}' of {name} has no value", defn.span,
                                f"pass it with --set {p}=... (or sizes={{'{p}': ...}})")
        with self._operation():
            g = self.instance(name, env)
            self._check_params(name, g)
        return g

    def param_count(self, g) -> int | None:
        total = 0
        for _, d in g.nodes(data=True):
            if d["op"] == Op.PARAM:
                dims = d["type"].concrete_dims()
                if dims is None:
                    return None
                c = 1
                for x in dims:
                    c *= x
                total += c
            elif d["op"] == Op.CALL:
                sub = self.param_count(self.instance(d["callee"], d["sizes"]))
                if sub is None:
                    return None
                total += sub
        return total

    def _check_params(self, name: str, g) -> None:
        """At most MAX_PARAM_ELEMENTS parameter elements, pointing at the largest contributor."""
        total = self.param_count(g)
        if total is None or total <= MAX_PARAM_ELEMENTS:
            return
        parts = []
        for n, d in g.nodes(data=True):
            if d["op"] == Op.PARAM:
                c = 1
                for x in d["type"].concrete_dims():
                    c *= x
                parts.append((c, n, d["span"]))
            elif d["op"] == Op.CALL:
                parts.append((self.param_count(self.instance(d["callee"], d["sizes"])) or 0, d.get("instance", n),
                              d["span"]))
        big, what, span = max(parts, key=lambda p: p[0])
        raise SpecError(f"{name} has {total} parameters ({what}: {big}); the limit is {MAX_PARAM_ELEMENTS} "
                        "per definition", span, "parameters this many would take gigabytes to initialise")

    @property
    def main(self) -> Definition:
        top = [d for d in self.definitions.values() if d.file == self.top_file]
        chosen = top or list(self.definitions.values())
        if not chosen:
            raise SpecError(f"{self.top_file} defines no cell, block or model", Span(self.top_file, 1, 1),
                            "nothing to compile or draw; a spec defines at least one 'cell', 'block' or 'model'")
        return chosen[-1]


@contextmanager
def _deep_recursion(limit: int = RECURSION_LIMIT):
    """Lowering recurses once per equation a value depends on (cells may list them in any order);
    give it room for a few hundred, then a RecursionError is caught and reported."""
    import sys

    old = sys.getrecursionlimit()
    if old < limit:
        sys.setrecursionlimit(limit)
    try:
        yield
    finally:
        if old < limit:
            sys.setrecursionlimit(old)


# ---- reading files ---------------------------------------------------------------------------
def shown(path) -> str:
    """A path as messages show it: names that are not UTF-8 get backslash escapes."""
    raw = os.fsencode(path)
    return raw.decode("utf-8", errors="backslashreplace")


_KINDS = {stat.S_IFIFO: "a FIFO (named pipe)", stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device",
          stat.S_IFSOCK: "a socket", stat.S_IFDIR: "a folder"}


def _not_regular(path, mode: int, span) -> SpecError:
    kind = _KINDS.get(stat.S_IFMT(mode), "not a regular file")
    return SpecError(f"{shown(path)} is {kind}, not a .seq file", span, "seqdsl reads specs from regular files only")


def read_source(path, span: Span | None = None, limit: int = MAX_SOURCE_BYTES) -> bytes:
    """The bytes of a regular file of at most `limit` bytes; anything else is a SpecError.

    Non-regular files (FIFOs, devices, sockets, folders) are refused before they are opened,
    and again on the open descriptor (O_NONBLOCK, so a FIFO swapped in between cannot block);
    at most limit + 1 bytes are read, whatever the file claims its size is."""
    name = shown(path)
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            raise _not_regular(path, st.st_mode, span)
        if st.st_size > limit:
            raise SpecError(f"{name}: file is larger than {_mib(limit)}", span)
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise _not_regular(path, st.st_mode, span)
            chunks, size = [], 0
            while size <= limit:
                chunk = os.read(fd, min(1 << 16, limit + 1 - size))
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
        finally:
            os.close(fd)
    except SpecError:
        raise
    except FileNotFoundError:
        raise SpecError(f"no such file: {name}", span) from None
    except IsADirectoryError:
        raise SpecError(f"{name} is a folder, not a .seq file", span) from None
    except ValueError:  # an embedded NUL byte
        raise SpecError(f"{name!r} is not a valid path (it contains a NUL byte)", span) from None
    except OSError as e:
        reason = e.strerror or str(e)
        if e.errno == errno.ENAMETOOLONG:
            name = name[:80] + "..."
        raise SpecError(f"cannot read {name}: {reason}", span) from None
    data = b"".join(chunks)
    if len(data) > limit:
        raise SpecError(f"{name}: file is larger than {_mib(limit)}", span)
    return data


def _mib(n: int) -> str:
    return f"{n >> 20} MiB" if n % (1 << 20) == 0 else f"{n} bytes"


# ---- where imports are found -----------------------------------------------------------------
LIBRARY = Path(__file__).resolve().parent / "lib"  # the bundled library of standard cells (package data)
PATH_VARIABLE = "SEQDSL_PATH"  # more library folders, searched before the bundled one
MAX_SCANNED_NAMES = 1000  # folder entries read per folder for a "did you mean" hint
_LABELS = {"spec": "the spec's folder", "SEQDSL_PATH": "the SEQDSL_PATH folder", "bundled": "the bundled library"}


@dataclass(frozen=True)
class Root:
    """A folder tree imports are confined to: the top spec's folder, or a library folder."""

    path: Path  # resolved
    shown: str  # as messages show it
    where: str  # "spec", "SEQDSL_PATH" or "bundled"

    @property
    def label(self) -> str:
        return _LABELS[self.where]


@dataclass(frozen=True)
class Import:
    """One file a `use` read (`Program.imports`, in the order read; a file read twice is listed once)."""

    name: str  # as the `use` wrote it: "lstm.seq"
    importer: str  # the file with the `use`, as messages show it
    file: str  # the file read, as messages show it (its definitions' `Definition.file`)
    where: str  # the tree it is in: "spec" (the top spec's folder), "SEQDSL_PATH" or "bundled"
    shadows: tuple = ()  # files of the same name later in the search order, not read


def search_path(environ: Mapping | None = None) -> tuple[list[Root], list[str]]:
    """The library folders a `use` searches after the importing file's own folder, in order (each
    SEQDSL_PATH entry, then the bundled library), and a note for each SEQDSL_PATH entry skipped
    because it does not exist or is not a folder. Empty entries and repeats are dropped."""
    environ = os.environ if environ is None else environ
    roots, skipped, seen = [], [], set()
    for entry in environ.get(PATH_VARIABLE, "").split(os.pathsep):
        if not entry:
            continue
        try:
            mode = os.stat(entry).st_mode
            why = None if stat.S_ISDIR(mode) else "it is not a folder"
            path = Path(entry).resolve()
        except FileNotFoundError:
            why = "it does not exist"
        except (OSError, RuntimeError, ValueError) as e:
            why = getattr(e, "strerror", None) or str(e)
        if why:
            skipped.append(f"{PATH_VARIABLE} entry {shown(entry)} was skipped ({why})")
        elif path not in seen:
            seen.add(path)
            roots.append(Root(path, shown(entry), "SEQDSL_PATH"))
    if LIBRARY.is_dir() and LIBRARY not in seen:
        roots.append(Root(LIBRARY, shown(LIBRARY), "bundled"))
    return roots, skipped


def library_modules() -> list[str]:
    """The names a spec may `use` from the bundled library: ["bahdanau.seq", "gru.seq", ...]."""
    return sorted(p.name for p in LIBRARY.glob("*.seq"))


def _exists(path) -> bool:
    return os.path.lexists(path)  # False for a bad name (NUL byte, too long), True for a dangling link


def _inside(target: Path, root: Path) -> bool:
    return target.parent == root or root in target.parents


def _plain(name: str) -> bool:
    """A name libraries are searched for: relative, with no '..' part."""
    p = Path(name)
    return not p.is_absolute() and ".." not in p.parts


def _resolve(path: Path, use: A.Use) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError, ValueError) as e:  # a symlink loop, an odd name
        raise SpecError(f"cannot resolve import \"{use.path}\": {e}", use.span) from None


def _seq_names(folder: Path, sub: Path, root: Path) -> list[str]:
    """The .seq files in folder/sub (at most MAX_SCANNED_NAMES entries read), named as `use` would;
    nothing when folder/sub is not inside root."""
    try:
        where = (folder / sub).resolve()
        if where != root and root not in where.parents:
            return []
        with os.scandir(where) as it:
            names = [e.name for _, e in zip(range(MAX_SCANNED_NAMES), it)]
    except (OSError, RuntimeError, ValueError):
        return []
    return [str(sub / n) if str(sub) != "." else n for n in names if n.endswith(".seq")]


class _Reader:
    """Reads a spec, then (depth first) the files it imports, each file once.

    A `use` is looked for beside the importing file, then in each library folder in order
    (`search_path`); the first found is read. Every file stays inside the tree it was found in:
    the top spec's folder, or that library folder. `tally` counts a lower bound on the IR nodes
    read so far, so an oversized program stops before its other imports are read."""

    def __init__(self, top: str, roots: list[Root], skipped: list[str]):
        self.roots, self.skipped = roots, skipped
        self.asts: dict = {}  # name -> (ast.Definition, file)
        self.order: list = []
        self.imports: list = []
        self.origin: dict = {}  # file (as shown) -> the `where` of its tree
        self.stack, self.done, self.tally = [top], set(), 0

    def read(self, text_or_bytes, file: str, folder: Path, root: Root) -> None:
        module = parse(text_or_bytes, file)
        self.origin.setdefault(file, root.where)
        for use in module.uses:
            self._follow(use, file, folder, root)
        for d in module.definitions:
            self._define(d, file)

    def _follow(self, use: A.Use, file: str, folder: Path, root: Root) -> None:
        if not use.path.endswith(".seq"):
            raise SpecError(f"imports name a .seq file, got \"{use.path}\"", use.span)
        target, name, tree, shadows = self._locate(use, file, folder, root)
        key = str(target)
        if key in self.stack:
            chain = " -> ".join(Path(s).name for s in self.stack[self.stack.index(key):] + [key])
            hint = (f"\"{use.path}\" is found beside the importing file first ({name}), so it shadows "
                    f"{shadows[0]}; rename your file to import the library's" if shadows else None)
            raise SpecError(f"import cycle: {chain}", use.span, hint)
        if key in self.done:
            return
        if len(self.done) + len(self.stack) - 1 >= MAX_IMPORTS:  # stack[0] is the top file
            raise SpecError(f"more than {MAX_IMPORTS} imported files", use.span,
                            "imports (and imports of imports) may name at most "
                            f"{MAX_IMPORTS} different files")
        data = read_source(target, use.span)
        self.imports.append(Import(use.path, file, name, tree.where, tuple(shadows)))
        self.stack.append(key)
        self.read(data, name, target.parent, tree)
        self.stack.pop()
        self.done.add(key)

    def _locate(self, use: A.Use, file: str, folder: Path, root: Root):
        """(the file `use` names, resolved; its name as shown; the tree it is in; the same-named
        files it shadows), or a SpecError: beside the importer first, then each library folder."""
        target = _resolve(folder / use.path, use)
        if not _inside(target, root.path):
            raise SpecError(f"import \"{use.path}\" leaves {root.label} {root.shown}", use.span,
                            "imports may only name files in the same folder or below")
        libraries = self.roots if _plain(use.path) else []
        if _exists(folder / use.path) or _exists(target):
            name = use.path if file.startswith("<") else str(Path(file).parent / use.path)
            return target, name, root, self._shadowed(use.path, libraries, target)
        for i, lib in enumerate(libraries):
            if not _exists(lib.path / use.path):
                continue
            found = _resolve(lib.path / use.path, use)
            if not _inside(found, lib.path):
                raise SpecError(f"import \"{use.path}\" found in {lib.label} {lib.shown} leads outside it, to "
                                f"{shown(found)}", use.span,
                                "a library file may not be a link to a file outside its library folder")
            return found, shown(Path(lib.shown) / use.path), lib, self._shadowed(use.path, libraries[i + 1:], found)
        raise self._not_found(use, folder, root, libraries)

    @staticmethod
    def _shadowed(name: str, libraries: list[Root], chosen: Path) -> list[str]:
        return [shown(Path(lib.shown) / name) for lib in libraries
                if _exists(lib.path / name) and os.path.realpath(lib.path / name) != str(chosen)]

    def _not_found(self, use: A.Use, folder: Path, root: Root, libraries: list[Root]) -> SpecError:
        """'no such file', with every folder searched and a guess at the name meant."""
        places = [f"{shown(folder)} (beside the importing file)"] + [
            f"{lib.shown} ({'SEQDSL_PATH' if lib.where == 'SEQDSL_PATH' else 'the bundled library'})"
            for lib in libraries]
        hint = "looked in " + ", ".join(places)
        if not _plain(use.path):
            return SpecError(f"no such file: \"{use.path}\"", use.span, hint + "; a name with '..' (or an "
                             "absolute path) is looked for only beside the importing file")
        if self.skipped:
            hint += "; " + "; ".join(self.skipped)
        sub = Path(use.path).parent
        names = _seq_names(folder, sub, root.path)
        for lib in libraries:
            names += _seq_names(lib.path, sub, lib.path)
        guess = closest(use.path, names)
        if guess:
            hint += f"; did you mean \"{guess}\"?"
        elif libraries and libraries[-1].where == "bundled":
            hint += "; the bundled library has " + ", ".join(library_modules())
        return SpecError(f"no such file: \"{use.path}\"", use.span, hint)

    def _define(self, d: A.Definition, file: str) -> None:
        if d.name in self.asts:
            other, other_file = self.asts[d.name]
            lib = next((f for f in (other_file, file) if self.origin.get(f, "spec") != "spec"), None)
            hint = (f"{lib} is from {_LABELS[self.origin[lib]]}; rename your definition, or drop the use that "
                    "reads it" if lib else None)
            raise SpecError(f"'{d.name}' is defined twice (also at {other.span})", d.span, hint)
        self.asts[d.name] = (d, file)
        self.order.append(d.name)
        # stop reading imports as soon as the program is certainly too large (repeats not counted yet)
        self.tally += _count(d.body, None, 1, [0, None])
        if self.tally > MAX_PROGRAM_NODES:
            raise SpecError(f"the definitions up to {d.name} lower to at least {self.tally} IR nodes; the limit is "
                            f"{MAX_PROGRAM_NODES} for a program with its imports", d.span,
                            "split the file, or use fewer repeats or layers")


def _source_kind(source, path, text):
    """('path', os-path) or ('text', str | bytes): the one rule that tells paths from text.

    - `path=` is a path and `text=` is source text, always;
    - a `pathlib.Path` (any os.PathLike) is a path; `bytes`/`bytearray` are source text;
    - a `str` is source text if it contains a line break, else a path (so "my{dir}/rnn.seq"
      is a path, and one-line source must be passed as text=... or end with a newline).
    """
    given = [x is not None for x in (source, path, text)]
    if sum(given) != 1:
        raise TypeError("load() takes exactly one of: a source (path or text), path=..., or text=...; "
                        f"got {sum(given)}")
    if text is not None:
        if isinstance(text, (bytes, bytearray, memoryview)):
            return "text", bytes(text)
        if isinstance(text, str):
            return "text", text
        raise TypeError(f"load(text=...) takes str or bytes, not {type(text).__name__}")
    if path is not None:
        if isinstance(path, (str, bytes, os.PathLike)):
            return "path", os.fsdecode(path)
        raise TypeError(f"load(path=...) takes a str or Path, not {type(path).__name__}")
    if isinstance(source, os.PathLike):
        return "path", os.fsdecode(source)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return "text", bytes(source)
    if isinstance(source, str):
        return ("text", source) if ("\n" in source or "\r" in source) else ("path", source)
    raise TypeError(f"load() takes a path (str or pathlib.Path) or .seq text (str with a newline, or bytes), "
                    f"not {type(source).__name__}: {source!r:.80}")


def _check_sizes(sizes, flags: bool = False) -> dict:
    """Sizes given by a caller: a mapping of name -> whole number (any integral type, e.g. numpy's);
    with `flags`, also true/false for flag parameters and bound `Size`s (what codegen passes)."""
    if sizes is None:
        return {}
    if not isinstance(sizes, Mapping):
        raise SpecError(f"sizes must be a dict of size name -> whole number, got {type(sizes).__name__}")
    out = {}
    for k, v in sizes.items():
        if not isinstance(k, str):
            raise SpecError(f"size names are strings, got {k!r}")
        if flags and isinstance(v, (bool, Size)):
            out[k] = v
        elif isinstance(v, bool) or not isinstance(v, numbers.Integral):
            raise SpecError(f"size {k} must be a whole number, got {v!r}")
        else:
            out[k] = int(v)
    return out


def load(source=None, sizes: dict | None = None, *, path=None, text=None) -> Program:
    """Parse, lower and check a spec and everything it imports.

    `source` is a path (`str` without a line break, or `pathlib.Path`) or `.seq` text (a `str`
    with a line break, or `bytes`); `path=` and `text=` say which explicitly."""
    kind, value = _source_kind(source, path, text)
    if kind == "path":
        p = Path(value)
        try:
            data = read_source(p, None)
        except SpecError as e:
            if source is not None and isinstance(source, str) and _looks_like_source(source):
                raise SpecError(e.message, e.span, "a str without a line break is taken as a path; to load "
                                "source text, pass seqdsl.load(text=...) (or end it with a newline)") from None
            raise
        file = shown(value)
        try:
            folder = p.resolve().parent
        except (OSError, RuntimeError) as e:
            raise SpecError(f"cannot resolve {file}: {e}") from None
        top = str(folder / p.name)
    else:
        data, file, folder, top = value, "<string>", Path.cwd().resolve(), None
    sizes = _check_sizes(sizes)
    roots, skipped = search_path()
    reader = _Reader(top or "<string>", roots, skipped)
    reader.read(data, file, folder, Root(folder, shown(folder), "spec"))
    asts, order = reader.asts, reader.order
    program = Program(asts, file, order, sizes)
    program.imports = reader.imports
    known = {p.name for d, _ in asts.values() for p in d.params}
    for k in sizes:
        if k not in known:
            raise SpecError(f"no definition has a size '{k}'", None, did_you_mean(k, known))
    _check_total_estimate(asts, order, sizes)
    with program._operation():
        for name in order:
            defn, f = asts[name]
            own = {k: v for k, v in sizes.items() if any(p.name == k for p in defn.params)}
            env = size_env(defn, own)
            g = program._lower(defn, env, program.resolve)
            program.definitions[name] = Definition(name, defn.kind, defn, f, g, env, program)
            if all(isinstance(v, bool) or v.value is not None for v in env.values()):
                program._instances.setdefault((name, tuple(sorted((k, str(v)) for k, v in env.items()))), g)
            program._check_params(name, g)
            program.warnings.extend(check_graph(g))
    return program


def _looks_like_source(s: str) -> bool:
    return "{" in s or s.lstrip().startswith(("cell ", "block ", "model ", "use "))


# ---- checks on a lowered graph ---------------------------------------------------------------
def _check_values(g) -> None:
    """Initializer scales, constants and initial states must be finite (where sizes are bound)."""
    for _n, d in g.nodes(data=True):
        if d["op"] == Op.PARAM and d.get("init") is not None:
            kind, scale = d["init"]
            check_scale(kind, scale, d["span"])
        elif d["op"] == Op.CONST:
            check_number(d.get("value"), "constant", d["span"])
        if d.get("state"):
            check_number(d.get("init"), "initial state", d.get("decl") or d["span"])


def _check_total_estimate(asts: dict, order: list, sizes: dict) -> None:
    """Before lowering anything: refuse a program whose definitions certainly lower to more than
    MAX_PROGRAM_NODES IR nodes together (a lower bound from the AST), at the definition that
    crosses the limit."""
    total = 0
    for name in order:
        defn = asts[name][0]
        try:
            env = size_env(defn, {k: v for k, v in sizes.items() if any(p.name == k for p in defn.params)})
        except SpecError:
            continue  # lowering reports it, with its position
        est = _estimate(defn, env)
        if est and est[0] > MAX_PROGRAM_NODES:
            raise SpecError(f"{name} expands to at least {est[0]} IR nodes; the limit is {MAX_PROGRAM_NODES}",
                            est[1], "use fewer repeats or layers; a program this large would take minutes to compile")
        total += est[0] if est else _count(defn.body, None, 1, [0, None])
        if total > MAX_PROGRAM_NODES:
            raise SpecError(f"the definitions up to {name} lower to at least {total} IR nodes; the limit is "
                            f"{MAX_PROGRAM_NODES} for a program with its imports", defn.span,
                            "split the file, or use fewer repeats or layers")


def _count(stmts, helper, mult: int, worst: list) -> int:
    """A lower bound on the IR nodes `stmts` lower to; the biggest repeat goes into `worst`."""
    total = 0
    for s in stmts:
        if isinstance(s, A.Repeat):
            try:
                n = helper.size(s.count, "repeat count").value if helper is not None else None
            except SpecError:
                n = None
            if n is None or n < 1:
                continue
            body = _count(s.body, helper, mult * n, worst)
            if body * n > worst[0]:
                worst[:] = [body * n, s.span]
            total += body * n
        elif isinstance(s, (A.Assign, A.Out)) and s.value is not None:
            total += _expr_nodes(s.value) + (1 if isinstance(s, A.Out) else 0)
        elif isinstance(s, A.Predict):  # its distribution's arguments, the output, maybe the observed input
            d = s.dist
            total += (_expr_nodes(d.args[0]) if isinstance(d, A.Call) and d.args else 0) + 1
        elif isinstance(s, (A.InDecl, A.MemDecl, A.Out)):  # (a state is its equation's node)
            total += 1
        elif isinstance(s, A.ParamDecl):
            total += len(s.items)
    return total


def _estimate(defn: A.Definition, env: dict):
    """(a lower bound on the IR nodes `defn` lowers to, the span of the repeat that dominates it),
    computed from the AST without expanding repeats; None when nothing is repeated."""
    worst = [0, None]
    total = _count(defn.body, SizeScope(defn, env), 1, worst)
    return None if worst[1] is None else (total, worst[1])


def _expr_nodes(e) -> int:
    """A lower bound on the IR nodes expression `e` lowers to (iterative: no recursion limit)."""
    n, todo = 0, [e]
    while todo:
        x = todo.pop()
        if isinstance(x, (A.BinOp,)):
            n += 1
            todo += [x.left, x.right]
        elif isinstance(x, (A.Neg,)):
            n += 1
            todo.append(x.operand)
        elif isinstance(x, A.Num):
            n += 1
        elif isinstance(x, A.Call):
            n += _CALL_NODES.get(x.func, 1)
            k = _VALUE_ARGS.get(x.func)
            todo += list(x.args if k is None else x.args[:k])  # the others are sizes, counts, flags
        elif isinstance(x, A.Run):
            n += 1
            todo += [v for v in (x.over, x.from_, x.attend) if v is not None and not isinstance(v, A.KwargList)]
        elif isinstance(x, (A.Last,)):
            n += 1
            todo.append(x.target)
        elif isinstance(x, A.Attr):
            todo.append(x.target)
    return n

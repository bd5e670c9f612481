"""Files written whole or not at all, and paths checked before use.

In:  a target path, a function that writes the bytes into an open binary file, and what the file is
     (for messages); or a path to check.
Out: `write_file(path, write, what)`: a temporary file in the target's folder, filled, fsynced and
     renamed over the target (its permissions kept; a symlink's target replaced, the link kept), the
     folder fsynced; the target path. `nul_check(path, verb, what)`: a SpecError for a path with a NUL
     byte; `checked_path(path, verb)`: the Path, or a SpecError when it is none; `strict_json(text)`:
     json.loads that refuses a key given twice in one object and NaN/Infinity (a ValueError saying
     which). Every failure is a SpecError that names the file; the old file is never half-replaced.
     Used by weights, generated modules, drawings, vocabularies, data files, plots and checkpoints.
"""

from __future__ import annotations

import json
import os
import secrets
import stat
from pathlib import Path

from .errors import SpecError


def write_file(path, write, what: str = "file") -> Path:
    """Write a file as a whole or not at all: `write(f)` fills a temporary file in the target's
    folder, which is fsynced and renamed over the target (a symlink's target is replaced, the link
    kept). Refuses targets that exist and are not regular files (/dev/null, a folder) and missing
    folders, with a `SpecError`. The name is kept exactly as given (no suffix is added)."""
    nul_check(path, "write", what)
    path = Path(os.fspath(path))
    target = Path(os.path.realpath(path)) if path.is_symlink() else path
    try:
        st = os.stat(target)
    except FileNotFoundError:
        st = None
    except OSError as e:
        raise SpecError(f"cannot write {what} {path}: {e.strerror}") from None
    if st is not None and not stat.S_ISREG(st.st_mode):
        kind = "a folder" if stat.S_ISDIR(st.st_mode) else "not a regular file"
        raise SpecError(f"cannot write {what} {path}: it is {kind}, and seqdsl only replaces regular files")
    folder = target.parent
    if not folder.is_dir():
        why = "is not a folder" if folder.exists() else "does not exist"
        raise SpecError(f"cannot write {what} {path}: the folder {folder} {why}")
    tmp = folder / f".{target.name}.{secrets.token_hex(4)}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            with os.fdopen(fd, "wb") as f:
                write(f)
                f.flush()
                os.fsync(f.fileno())
            if st is not None:
                os.chmod(tmp, stat.S_IMODE(st.st_mode))
            os.replace(tmp, target)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
    except OSError as e:
        raise SpecError(f"cannot write {what} {path}: {e.strerror or e}") from None
    try:  # make the rename itself durable
        dfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass
    return path


def checked_path(path, verb: str) -> Path:
    """`path` as a Path, or a SpecError `cannot {verb} ...` when it is not a str or PathLike or holds a
    NUL byte."""
    try:
        raw = os.fsencode(path)
    except TypeError:
        raise SpecError(f"cannot {verb} {path!r}: not a path") from None
    if b"\0" in raw:
        raise SpecError(f"cannot {verb} {raw.decode('utf-8', 'backslashreplace')!r}: not a valid path "
                        "(it contains a NUL byte)")
    return Path(os.fsdecode(raw))


def nul_check(path, verb: str, what: str) -> None:
    try:
        raw = os.fsencode(path)
    except (TypeError, ValueError):
        return
    if b"\0" in raw:
        raise SpecError(f"cannot {verb} {what} {raw.decode('utf-8', 'backslashreplace')!r}: "
                        "not a valid path (it contains a NUL byte)")


def _unique_keys(pairs):
    out = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"the key {json.dumps(k, ensure_ascii=False)} appears twice in one object")
        out[k] = v
    return out


def _no_constant(name):
    raise ValueError(f"{name} is not a number JSON allows (numbers must be finite)")


def strict_json(text: str):
    """json.loads of a file people give us: a key twice in one object, or NaN / Infinity (which
    Python's json accepts), is a ValueError that says so."""
    return json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_no_constant)

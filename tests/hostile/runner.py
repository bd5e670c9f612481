"""Run one hostile case in a child process and judge its outcome.

In:  a `Case` (cases.py): what to run in the child (`kind` + `payload`, see actions.py), the
     files to set up in a fresh working folder, and what a clean outcome is (`expected`).
Out: `run_case(case) -> Outcome` and `problems(case, outcome) -> [str]` (empty = clean).

Every case runs in its own child process forked from a fork server that has seqdsl, NumPy
and torch imported (so a case costs milliseconds, not a fresh interpreter), with:
  - a wall-clock timeout (the child is killed: "hang"),
  - an address-space cap of MEM_CAP bytes above what the server already uses (RLIMIT_AS;
    an allocation past it is a MemoryError, reported as "memory"),
  - a CPU-time cap of twice the timeout (so a child outlives no parent for long),
  - a file-size cap (RLIMIT_FSIZE), stdin from /dev/null, stdout/stderr captured to files
    outside the working folder, TMPDIR inside it,
  - the working folder (its cwd) snapshotted before and after: any file created, changed
    or removed that the case did not name in `writes` is "touched", and every file in
    `keep` must be byte-identical afterwards ("lost").
Any Python traceback on stderr, any exception type other than the expected one, a child
killed by a signal, or a step slower than `max_s` is a problem.
"""

from __future__ import annotations

import hashlib
import multiprocessing as mp
import os
import re
import shutil
import stat
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent
ROOT = TESTS.parent
MEM_CAP = 3 << 30  # address space a case may use above the fork server's own
FSIZE_CAP = 512 << 20  # the largest file a case may write
POSITIONED = re.compile(r"^(?P<file>.+?):(?P<line>\d+):(?P<col>\d+): error: (?P<msg>.*)$")
CLEAN_LINE = re.compile(r"^(?P<where>.+?): error: (?P<msg>.+)$")


@dataclass(frozen=True)
class Case:
    id: str
    cls: str  # a: specs, b: files, c: cli, d: names, e: arrays, f: weights, g: render
    kind: str  # the action run in the child (actions.ACTIONS)
    payload: object
    expected: str  # see EXPECTED
    match: str | None = None  # a regex the error message (or CLI stderr) must match
    slow: bool = False
    timeout: float = 15.0
    files: dict = field(default_factory=dict)  # relative path -> str | bytes | ("fifo",) | ("dir",) | ("symlink", to)
    writes: tuple = ()  # files the case may create or change (relative paths, or prefixes ending in '/')
    keep: tuple = ()  # files that must be byte-identical afterwards
    max_s: float | None = None  # the action itself must finish within this (seconds)
    note: str = ""


EXPECTED = {
    "spec_error": "a SpecError whose first line is `file:line:col: error: ...` with line >= 1",
    "error": "a SpecError or ValueError whose message matches `match` (names the input)",
    "input_error": "a ValueError (the boundary's InputError) whose message matches `match`",
    "ok": "no exception (the action checks its own result; AssertionError = wrong answer)",
    "ok_or_spec_error": "either no exception or a positioned SpecError",
    "ok_or_error": "either no exception or an `error` (above)",
    "cli_error": "exit status 1, an `...: error: ...` line on stderr, no traceback",
    "cli_ok": "exit status 0, no traceback",
    "cli_clean": "exit status 0, or exit status 1 with an `...: error: ...` line; no traceback",
}


@dataclass
class Outcome:
    status: str  # "returned" | "raised" | "hang" | "died"
    value: object = None
    exc_type: str = ""
    exc_mro: tuple = ()
    message: str = ""
    traceback: str = ""
    rc: int | None = None
    stdout: str = ""
    stderr: str = ""
    elapsed: float = 0.0
    action_s: float = 0.0
    signal: int | None = None
    touched: list = field(default_factory=list)
    lost: list = field(default_factory=list)


# ---- the child ---------------------------------------------------------------------------------
def _vm_size() -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _child(kind, payload, workdir, logdir, conn, timeout=60.0):
    import resource
    import signal

    try:
        _restore_pythonpath()
        os.chdir(workdir)
        os.environ["TMPDIR"] = str(Path(workdir) / ".tmp")
        tempfile.tempdir = None
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        for fd, name in ((1, "stdout"), (2, "stderr")):
            out = os.open(os.path.join(logdir, name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.dup2(out, fd)
            os.close(out)
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (FSIZE_CAP, FSIZE_CAP))
        cap = _vm_size() + MEM_CAP
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
        cpu = int(2 * timeout) + 10  # even if the parent is gone, the child ends (BLAS may use 2 cores)
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))
        if "torch" in sys.modules:
            sys.modules["torch"].set_num_threads(1)
        from hostile import actions

        t0 = time.monotonic()
        try:
            value = actions.ACTIONS[kind](payload)
            res = {"status": "returned", "value": value}
        except BaseException as e:  # noqa: B036 — everything is judged by the parent
            import traceback

            res = {"status": "raised", "exc_type": type(e).__name__,
                   "exc_mro": tuple(c.__name__ for c in type(e).__mro__),
                   "message": _safe_str(e), "traceback": traceback.format_exc()[-6000:]}
        res["action_s"] = time.monotonic() - t0
        if isinstance(res.get("value"), dict) and "rc" in res["value"]:
            res["rc"] = res["value"]["rc"]
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except Exception:
            pass
        conn.send(res)
    finally:
        os._exit(0)


def _restore_pythonpath() -> None:
    """The fork server was started with tests/ on PYTHONPATH (see _start); a case sees the
    environment the user had."""
    path = os.environ.get("PYTHONPATH", "").split(os.pathsep)
    if path and path[0] == str(TESTS):
        rest = os.pathsep.join(path[1:])
        if rest:
            os.environ["PYTHONPATH"] = rest
        else:
            os.environ.pop("PYTHONPATH", None)


def _safe_str(e) -> str:
    try:
        return str(e)[:20000]
    except Exception as inner:  # a __str__ that fails is itself a finding
        return f"<str() of {type(e).__name__} failed: {type(inner).__name__}: {inner}>"


# ---- the parent --------------------------------------------------------------------------------
_CTX = None
_START = __import__("threading").Lock()


def _start(p) -> None:
    """Start a forkserver child without re-running the parent's __main__ in it (pytest's or
    report.py's): a case needs only the preloaded modules."""
    import multiprocessing.spawn as spawn

    with _START:
        orig = spawn.get_preparation_data

        def prep(name):
            d = orig(name)
            d.pop("init_main_from_path", None)
            d.pop("init_main_from_name", None)
            return d

        # Python 3.11's fork server ignores the parent's sys.path: it finds `hostile` through
        # PYTHONPATH (set while it starts) or not at all, and then every case re-imports it
        saved = os.environ.get("PYTHONPATH")
        os.environ["PYTHONPATH"] = os.pathsep.join([str(TESTS)] + ([saved] if saved else []))
        spawn.get_preparation_data = prep
        try:
            p.start()
        finally:
            spawn.get_preparation_data = orig
            if saved is None:
                os.environ.pop("PYTHONPATH", None)
            else:
                os.environ["PYTHONPATH"] = saved


def context():
    global _CTX
    if _CTX is None:
        if str(TESTS) not in sys.path:
            sys.path.insert(0, str(TESTS))
        _CTX = mp.get_context("forkserver")
        preload = ["numpy", "networkx", "lark", "seqdsl", "seqdsl.cli", "seqdsl.interpret",
                   "seqdsl.backends.runtime", "seqdsl.render", "graphviz", "hostile.actions"]
        try:
            import importlib.util

            if importlib.util.find_spec("torch") is not None:
                preload[1:1] = ["torch", "safetensors.torch"]
        except Exception:
            pass
        _CTX.set_forkserver_preload(preload)
    return _CTX


def _setup(workdir: Path, files: dict) -> None:
    for rel, content in files.items():
        p = os.path.join(os.fsencode(workdir), os.fsencode(rel))
        os.makedirs(os.path.dirname(p), exist_ok=True)
        if isinstance(content, tuple):
            what = content[0]
            if what == "fifo":
                os.mkfifo(p)
            elif what == "dir":
                os.makedirs(p, exist_ok=True)
            elif what == "symlink":
                os.symlink(content[1], p)
            elif what == "chardev":  # a private copy of a device node, e.g. (1, 3) /dev/null, (1, 7) /dev/full
                os.mknod(p, stat.S_IFCHR | 0o666, os.makedev(content[1], content[2]))
            elif what == "sparse":  # a file of this many bytes that takes no disk
                with open(p, "wb") as f:
                    f.truncate(content[1])
            else:
                raise ValueError(f"unknown setup {what!r}")
        else:
            with open(p, "wb") as f:
                f.write(content if isinstance(content, bytes) else content.encode("utf-8"))


def snapshot(root: Path) -> dict:
    """relative path (bytes) -> (kind, size, sha256 of content for regular files)."""
    out = {}
    broot = os.fsencode(root)
    for dirpath, dirnames, filenames in os.walk(broot):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, broot)
            st = os.lstat(full)
            if stat.S_ISREG(st.st_mode) and st.st_size > (64 << 20):  # (sparse) giants: no hashing
                out[rel] = ("file", st.st_size, st.st_mtime_ns, st.st_ino)
            elif stat.S_ISREG(st.st_mode):
                h = hashlib.sha256()
                with open(full, "rb") as f:
                    for chunk in iter(lambda: f.read(1 << 20), b""):
                        h.update(chunk)
                out[rel] = ("file", st.st_size, h.hexdigest())
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir",)
            elif stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", os.readlink(full))
            else:
                out[rel] = ("special", stat.S_IFMT(st.st_mode))
    return out


def _allowed(rel: str, writes) -> bool:
    return any(rel == w or (w.endswith("/") and rel.startswith(w)) or rel == w.rstrip("/") for w in writes)


def run_case(case: Case) -> Outcome:
    ctx = context()
    base = Path(tempfile.mkdtemp(prefix="seqdsl-hostile-"))
    workdir, logdir = base / "w", base / "log"
    workdir.mkdir()
    logdir.mkdir()
    (workdir / ".tmp").mkdir()
    try:
        _setup(workdir, case.files)
        before = snapshot(workdir)
        recv, send = ctx.Pipe(duplex=False)
        p = ctx.Process(target=_child, args=(case.kind, case.payload, str(workdir), str(logdir), send,
                                                  case.timeout))
        t0 = time.monotonic()
        _start(p)
        send.close()
        res = None
        if recv.poll(case.timeout):
            try:
                res = recv.recv()
            except (EOFError, OSError):
                res = None
        elapsed = time.monotonic() - t0
        if res is None and p.is_alive() and elapsed >= case.timeout:
            p.kill()
            p.join(10)
            out = Outcome("hang", elapsed=elapsed)
        else:
            p.join(10)
            if p.is_alive():
                p.kill()
                p.join(10)
            if res is None:
                code = p.exitcode
                out = Outcome("died", elapsed=elapsed, signal=-code if code and code < 0 else None,
                              message=f"child exit code {code}")
            else:
                out = Outcome(res["status"], value=res.get("value"), exc_type=res.get("exc_type", ""),
                              exc_mro=tuple(res.get("exc_mro", ())), message=res.get("message", ""),
                              traceback=res.get("traceback", ""), rc=res.get("rc"), elapsed=elapsed,
                              action_s=res.get("action_s", 0.0))
        recv.close()
        for name in ("stdout", "stderr"):
            try:
                setattr(out, name, (logdir / name).read_bytes()[:200_000].decode("utf-8", "replace"))
            except OSError:
                pass
        after = snapshot(workdir)
        for rel in sorted(set(before) | set(after)):
            if before.get(rel) != after.get(rel):
                text = os.fsdecode(rel)
                if text == ".tmp" or not _allowed(text, case.writes):
                    what = "created" if rel not in before else "removed" if rel not in after else "changed"
                    out.touched.append(f"{text} ({what})")
        for k in case.keep:
            rel = os.fsencode(k)
            if before.get(rel) != after.get(rel):
                out.lost.append(k)
        return out
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _first_error_line(text: str) -> str:
    for line in text.splitlines():
        if ": error:" in line:
            return line
    return ""


def problems(case: Case, o: Outcome) -> list:
    """Why an outcome is not clean (empty list: clean)."""
    out = []
    if o.status == "hang":
        return [f"hang: no result after {o.elapsed:.1f}s (killed)"]
    if o.status == "died":
        return [f"crash: the child died ({o.message}, signal {o.signal})"]
    if "Traceback (most recent call last)" in o.stderr:
        tail = o.stderr.strip().splitlines()[-1][:300] if o.stderr.strip() else ""
        out.append(f"traceback on stderr: {tail}")
    if o.touched:
        out.append("touched files the user did not name: " + ", ".join(o.touched))
    if o.lost:
        out.append("previous file not intact: " + ", ".join(o.lost))
    if case.max_s is not None and o.action_s > case.max_s:
        out.append(f"slow: took {o.action_s:.1f}s (the limit is {case.max_s}s)")
    first = o.message.splitlines()[0][:300] if o.message else ""
    exp = case.expected
    if o.status == "raised":
        if "MemoryError" in o.exc_mro:
            return out + [f"memory: MemoryError past the {MEM_CAP >> 30} GiB cap: {first}"]
        if "RecursionError" in o.exc_mro:
            return out + ["crash: RecursionError"]
        if o.exc_type == "AssertionError":
            return out + [f"wrong answer: {first}"]
    if exp in ("cli_error", "cli_ok", "cli_clean"):
        if o.status != "returned":
            return out + [f"crash: {o.exc_type}: {first}"]
        if exp == "cli_clean":
            if o.rc == 0 or (o.rc == 1 and "usage:" in o.stdout + o.stderr):
                return out
            exp = "cli_error"
        if exp == "cli_ok":
            if o.rc != 0:
                out.append(f"exit status {o.rc}, expected 0: {_first_error_line(o.stderr) or o.stderr[-300:]}")
            return out
        if o.rc != 1:
            out.append(f"exit status {o.rc}, expected 1" + (f": {o.stderr.strip()[-300:]}" if o.stderr else ""))
        line = _first_error_line(o.stderr)
        if not line or not CLEAN_LINE.match(line):
            out.append(f"no 'error:' line on stderr: {o.stderr.strip()[:300]!r}")
        elif case.match and not re.search(case.match, o.stderr):
            out.append(f"error does not match /{case.match}/: {line[:300]}")
        return out
    if exp == "ok":
        if o.status == "raised":
            what = "refused a valid input" if "SpecError" in o.exc_mro or "InputError" in o.exc_mro else "crash"
            out.append(f"{what}: {o.exc_type}: {first}")
        return out
    if exp == "ok_or_spec_error":
        if o.status == "raised":
            out += _positioned(o, case, first)
        return out
    if exp == "ok_or_error":
        if o.status == "raised":
            exp = "error"
        else:
            return out
    if o.status == "returned":
        return out + [f"accepted: expected {exp}, got a result: {str(o.value)[:200]}"]
    if exp == "spec_error":
        return out + _positioned(o, case, first)
    if exp == "error":
        if not ({"SpecError", "ValueError", "TypeError"} & set(o.exc_mro)):
            return out + [f"wrong exception: {o.exc_type}: {first}"]
        if case.match and not re.search(case.match, o.message):
            out.append(f"message does not match /{case.match}/: {o.exc_type}: {first}")
        return out
    if exp == "input_error":
        if "ValueError" not in o.exc_mro or "SpecError" in o.exc_mro and "InputError" not in o.exc_mro:
            return out + [f"wrong exception: {o.exc_type}: {first}"]
        if case.match and not re.search(case.match, o.message):
            out.append(f"message does not match /{case.match}/: {o.exc_type}: {first}")
        return out
    raise ValueError(f"unknown expectation {exp!r}")


def _positioned(o: Outcome, case: Case, first: str) -> list:
    if "SpecError" not in o.exc_mro:
        return [f"crash: {o.exc_type}: {first}"]
    m = POSITIONED.match(first)
    if not m or int(m["line"]) < 1:
        return [f"error without a position: {first}"]
    if case.match and not re.search(case.match, o.message):
        return [f"message does not match /{case.match}/: {first}"]
    return []

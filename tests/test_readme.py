"""README.md is real: its code fences are balanced, its commands run (with the output shown), its
error example is what seqdsl prints, its specs are those in specs/, and its Python runs."""

from __future__ import annotations

import re
import shutil

import pytest
from conftest import ROOT, run_cli

README = (ROOT / "README.md").read_text(encoding="utf-8")


def fences(text: str) -> list:
    """(info string, lines) of each fenced block; fails on an unbalanced or malformed fence."""
    blocks, current, info = [], None, ""
    for number, line in enumerate(text.splitlines(), 1):
        if not line.startswith("```"):
            if current is not None:
                current.append(line)
            continue
        if current is None:
            info, current = line[3:].strip(), []
        else:
            assert line.strip() == "```", f"README.md:{number}: a closing fence has text after it: {line!r} " \
                                          "(an earlier block is probably unclosed)"
            blocks.append((info, current))
            current = None
    assert current is None, "README.md: the last code block is never closed"
    return blocks


BLOCKS = fences(README)


def _strip_comment(line: str) -> str:
    return line.split("#")[0].rstrip()


def test_fences_are_balanced():
    assert len(BLOCKS) >= 6
    assert fences("a\n```\nx\n```\n") == [("", ["x"])]
    with pytest.raises(AssertionError):
        fences("```\nx\n```\nstray\n```\nmore\n```python\n")
    with pytest.raises(AssertionError):
        fences("```\nx\n")


def _sandbox(tmp_path):
    shutil.copytree(ROOT / "specs", tmp_path / "specs")
    return tmp_path


def _run(command: str, cwd, capsys):
    """The command as `seqdsl` runs it (seqdsl.cli.main, in this process: tests/test_program.py
    and the hostile suite start `python -m seqdsl` itself)."""
    argv = command.split()
    assert argv[0] == "seqdsl", command
    return run_cli(capsys, *argv[1:], cwd=cwd)


def _sessions():
    """(command, shown output lines or None) for every `$ seqdsl ...` line in the README."""
    out = []
    for info, lines in BLOCKS:
        if info or not any(line.startswith("$ seqdsl") for line in lines):
            continue
        for i, line in enumerate(lines):
            if not line.startswith("$ "):
                continue
            shown = []
            for nxt in lines[i + 1:]:
                if nxt.startswith("$ "):
                    break
                shown.append(nxt)
            out.append((_strip_comment(line[2:]), shown or None))
    return out


SESSIONS = _sessions()


def test_readme_shows_commands():
    commands = [c for c, _ in SESSIONS]
    assert any(c.startswith("seqdsl check") for c in commands)
    assert any(c.startswith("seqdsl compile") for c in commands)
    assert any(shown for _, shown in SESSIONS)


@pytest.mark.parametrize("command,shown", SESSIONS, ids=[c for c, _ in SESSIONS])
def test_commands_run_and_print_what_is_shown(command, shown, tmp_path, capsys):
    if command.startswith("seqdsl render") and not shutil.which("dot"):
        pytest.skip("graphviz's dot is not installed")
    cwd = _sandbox(tmp_path)
    r = _run(command, cwd, capsys)
    assert r.returncode == 0, r.stderr
    if shown is not None:
        assert r.stdout.splitlines() == shown
    if " -o " in command:
        assert (cwd / command.split(" -o ")[1].split()[0]).exists()


def test_error_example_is_real(tmp_path, capsys):
    intro = README.index("with `c[t-1]` mistyped as `c`")
    info, shown = next(b for b in BLOCKS if b[1] and b[1][0].startswith("lstm.seq:15:5: error:"))
    assert not info and README.index(shown[0]) > intro
    spec = (ROOT / "specs/lstm.seq").read_text(encoding="utf-8")
    assert "c = f * c[t-1] + i * g   " in spec
    (tmp_path / "lstm.seq").write_text(spec.replace("c = f * c[t-1] + i * g   ", "c = f * c + i * g        "))
    r = _run("seqdsl check lstm.seq", tmp_path, capsys)
    assert r.returncode == 1
    assert [_strip_comment(line) for line in r.stderr.strip().splitlines()] == shown


def _code(lines) -> list:
    return [c for c in (_strip_comment(line).strip() for line in lines) if c]


def test_specs_shown_are_the_specs():
    shown = [lines for info, lines in BLOCKS if not info and lines and re.match(r"(cell|model|block|use) ", lines[0])]
    assert len(shown) >= 2
    files = {p.name: _code(p.read_text(encoding="utf-8").splitlines()) for p in (ROOT / "specs").glob("*.seq")}
    for lines in shown:
        chunks = []  # each `use` line, and each definition, must appear as such in one spec file
        for line in _code(lines):
            if re.match(r"(use|cell|model|block) ", line) or not chunks:
                chunks.append([])
            chunks[-1].append(line)
        for chunk in chunks:
            assert any(" ".join(chunk) in " ".join(f) for f in files.values()), chunk[0]
        assert any(all(" ".join(c) in " ".join(f) for c in chunks) for f in files.values()), chunks[0][0]


def _python(lines) -> str:
    """A README Python block as a script: `stmt` followed by `# XError: message` must raise exactly that."""
    out = []
    for line in lines:
        m = re.match(r"# (\w+Error): (.*)$", line)
        if m and out:
            stmt = out.pop()
            out += ["try:", f"    {stmt}", f"except {m.group(1)} as _e:",
                    f"    assert str(_e) == {m.group(2)!r}, str(_e)", "else:",
                    f"    raise AssertionError({stmt!r} + ' did not raise')"]
        else:
            out.append(line)
    return "\n".join(out) + "\n"


def test_python_examples_run(tmp_path, monkeypatch):
    """Every Python block, one after another as one script, run here from a folder holding specs/
    (torch is imported already; test_train_resume.py and test_train_ddp.py run seqdsl's Python API
    in fresh interpreters)."""
    pytest.importorskip("torch")
    script = "".join(_python(lines) for info, lines in BLOCKS if info == "python")
    assert "seqdsl.compile(" in script and "except ValueError" in script
    cwd = _sandbox(tmp_path)
    (cwd / "example.py").write_text(script, encoding="utf-8")
    monkeypatch.chdir(cwd)
    exec(compile(script, str(cwd / "example.py"), "exec"), {"__name__": "__main__"})
    assert (cwd / "lstm.npz").exists()

"""Every fenced ```bash block of README.md and docs/*.md runs as printed (issue 10).

Convention (docs/examples/README.md): a block runs with ``bash -euo pipefail`` in a fresh
working directory that holds a copy of ``docs/`` (so ``docs/examples/...`` inputs resolve and
nothing in the repository is overwritten) and links to ``src``, ``scripts``, ``benchmarks`` and ``.venv``,
with the repository's ``.venv/bin`` first on PATH (the README says to activate the environment
after its first command; bare ``lutarterial`` and ``python`` are the venv's). The blocks of one
file run in order in the same directory, so a later block may use what an earlier one wrote.
```text fences are illustrations and are never run; a ```bash block preceded by
``<!-- docs-test: skip: REASON -->`` is not run (only for commands that cannot run inside a
test: the bootstrap that made the environment, the test suite itself, a server that never exits).
A failure names the file, the line of the block and the command's output.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SKIP = re.compile(r"<!--\s*docs-test:\s*skip:\s*(.+?)\s*-->")
TIMEOUT_S = 300


@dataclass(frozen=True)
class Block:
    path: Path
    line: int
    text: str
    skip: str | None

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def blocks(path: Path) -> list[Block]:
    """The ```bash blocks of a Markdown file, with the line of their opening fence."""
    out: list[Block] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        if lines[i].strip() == "```bash":
            start = i
            j = i + 1
            while j < len(lines) and lines[j].strip() != "```":
                j += 1
            prev = next((lines[k] for k in range(start - 1, -1, -1) if lines[k].strip()), "")
            m = SKIP.search(prev)
            out.append(Block(path, start + 1, "\n".join(lines[start + 1:j]), m.group(1) if m else None))
            i = j
        i += 1
    return out


ALL = [b for p in DOC_FILES for b in blocks(p)]


def test_block_parser_finds_fences_and_skip_markers(tmp_path: Path) -> None:
    md = tmp_path / "x.md"
    md.write_text("a\n```bash\necho 1\n```\n<!-- docs-test: skip: server -->\n```bash\nserve\n```\n```text\nno\n```\n")
    got = blocks(md)
    assert [(b.line, b.text, b.skip) for b in got] == [(2, "echo 1", None), (6, "serve", "server")]


def test_every_skip_gives_a_reason() -> None:
    assert all(b.skip for b in ALL if b.skip is not None)


def _workspace(doc: Path, base: Path, demo_data: Path | None = None) -> Path:
    """A fresh working directory for one documentation file (its blocks run in order there).

    ``demo_data`` is a ``data/`` folder made by ``lutarterial demo`` (the README's first command
    leaves one in the clone), copied so that the registry examples find the demo database.
    """
    ws = base / re.sub(r"[^A-Za-z0-9]+", "_", str(doc.relative_to(ROOT)))
    ws.mkdir(parents=True)
    shutil.copytree(ROOT / "docs", ws / "docs")
    if demo_data is not None:
        shutil.copytree(demo_data, ws / "data")
    for name in ("src", "scripts", "benchmarks", ".venv"):
        if (ROOT / name).exists():
            (ws / name).symlink_to(ROOT / name)
    return ws


def run_blocks(doc: Path, base: Path, demo_data: Path | None = None) -> tuple[list[str], list[str]]:
    """Run every block of ``doc`` in order; (failures naming the block, skipped blocks with reasons)."""
    ws = _workspace(doc, base, demo_data)
    venv_bin = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}",
           "VIRTUAL_ENV": str(venv_bin.parent), "PYTHONPATH": "", "COLUMNS": "120"}
    env.pop("LUTARTERIAL_DB", None)
    failures: list[str] = []
    skipped: list[str] = []
    for block in blocks(doc):
        if block.skip:
            skipped.append(f"{block.id}: {block.skip}")
            continue
        proc = subprocess.Popen(["bash", "-euo", "pipefail", "-c", block.text], cwd=ws, env=env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        try:
            out, err = proc.communicate(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the whole group: a server started by the block too
            proc.communicate()
            failures.append(f"{block.id}: did not finish in {TIMEOUT_S} s (a server? fence it as text):\n{block.text}")
            continue
        r = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
        if r.returncode != 0:
            failures.append(f"{block.id}: exit {r.returncode}\n--- block ---\n{block.text}\n--- stderr (tail) ---\n"
                            f"{r.stderr[-2000:]}\n--- stdout (tail) ---\n{r.stdout[-800:]}")
    return failures, skipped


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ``data/`` folder the README's first command leaves: ``lutarterial demo`` run once."""
    cwd = tmp_path_factory.mktemp("readme_first_command")
    venv_bin = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}", "PYTHONPATH": ""}
    env.pop("LUTARTERIAL_DB", None)
    r = subprocess.run([str(venv_bin / "lutarterial"), "demo"], cwd=cwd, env=env, text=True,
                       capture_output=True, timeout=900)
    assert r.returncode == 0, f"lutarterial demo failed:\n{r.stderr[-2000:]}"
    return cwd / "data"


@pytest.mark.slow
@pytest.mark.parametrize("doc", [p for p in DOC_FILES if blocks(p)], ids=lambda p: str(p.relative_to(ROOT)))
def test_documented_commands_run(doc: Path, tmp_path: Path, demo_data: Path) -> None:
    """One test per file (its blocks depend on each other, so they stay together under xdist)."""
    failures, _skipped = run_blocks(doc, tmp_path, demo_data)
    if failures:
        pytest.fail(f"{len(failures)} block(s) of {doc.relative_to(ROOT)} do not run as printed:\n\n"
                    + "\n\n".join(failures))

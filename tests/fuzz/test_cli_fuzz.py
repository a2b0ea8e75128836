"""Bounded fuzzing of every CLI command (issue 9, item 7): no traceback, no surprise, no NaN out.

Each leaf command of the ``lutarterial`` app is found at run time and driven in-process through
:func:`lutarterial.cli.main.run` with arguments generated from its signature: input files of
random bytes, JSON of the wrong types or with huge/NaN/negative numbers and odd unicode, mutated
valid examples; numbers such as ``nan``, ``inf``, ``-1``, ``1e308``; a corrupted SQLite file or a
nonsense URL for ``--db``. Asserted for every run:

* exit code in {0, 1, 2, 3} and never a ``Traceback`` or an ``internal error`` line on stderr
  (:mod:`lutarterial.cli.errors`: that line means an exception nobody anticipated);
* JSON output, when there is any, is strict JSON (no NaN/Infinity);
* a file of random bytes is never accepted (exit code != 0).

Hypothesis runs derandomized with few examples, so the suite is deterministic and takes seconds.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import io
import json
import math
import sys
from pathlib import Path
from typing import Any

import pytest

hypothesis = pytest.importorskip("hypothesis", reason="the fuzz suite needs hypothesis (dev extra)")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from lutarterial.cli.errors import INTERNAL_ERROR_PREFIX  # noqa: E402
from lutarterial.cli.main import app, run  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "docs" / "examples" / "clinical"

_CHECKS = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large]
#: Commands reading domain input files get more examples; registry commands fail at the database.
DOMAIN = {"screen", "grade", "recist", "next-dose", "ae-table", "dose", "quantify", "uptake", "kernel"}
FUZZ_DOMAIN = settings(max_examples=10, derandomize=True, deadline=None, database=None, suppress_health_check=_CHECKS)
FUZZ = settings(max_examples=3, derandomize=True, deadline=None, database=None, suppress_health_check=_CHECKS)

#: Commands not fuzzed, with the reason.
SKIP = {
    "serve": "starts a web server that runs until stopped",
}
#: Path options that name an output, not an input.
OUTPUTS = {"--out", "--csv", "--png", "--swimmer-png", "--out-dir", "--plots", "--store"}


def leaf_commands() -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []

    def walk(t: Any, prefix: tuple[str, ...]) -> None:
        for info in t.registered_commands:
            name = info.name or info.callback.__name__.replace("_", "-")
            out.append((" ".join((*prefix, name)), info.callback))
        for g in t.registered_groups:
            walk(g.typer_instance, (*prefix, g.name or ""))

    walk(app, ())
    return sorted(out, key=lambda x: x[0])


COMMANDS = [(n, cb) for n, cb in leaf_commands() if n not in SKIP]


def invoke(argv: list[str]) -> tuple[int, str, str]:
    """Run the CLI in-process; (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    code: Any = 0
    stdin = sys.stdin
    sys.stdin = io.StringIO("")  # a command that reads a password gets end-of-file, not the test's stdin
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                run(argv)
            except SystemExit as exc:
                code = exc.code
    finally:
        sys.stdin = stdin
    if code is None:
        code = 0
    if not isinstance(code, int):  # sys.exit("message")
        err.write(str(code))
        code = 1
    return code, out.getvalue(), err.getvalue()


def check_outcome(argv: list[str], code: int, out: str, err: str) -> None:
    shown = " ".join(a[:60] for a in argv)
    assert code in (0, 1, 2, 3), f"exit {code} for {shown}\n{err[-2000:]}"
    assert "Traceback" not in err and "Traceback" not in out, f"traceback for {shown}\n{err[-3000:]}"
    assert INTERNAL_ERROR_PREFIX not in err, f"unanticipated exception for {shown}\n{err[-2000:]}"
    if "--json" in argv and code == 0 and out.strip().startswith(("{", "[")):
        for line in (out.splitlines() if out.lstrip().startswith("{") and "\n{" in out else [out]):
            if line.strip():
                json.loads(line, parse_constant=_refuse_constant)


def _refuse_constant(name: str) -> Any:
    raise AssertionError(f"non-finite number {name} in JSON output")


# --------------------------------------------------------------------------------------------
# strategies

ODD_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=24
) | st.sampled_from(["", " ", "١٢٣", "Ⅻ", "𝟗𝟗", "e\u0301", "\u202e", "../../etc/passwd", "%s%n", "NaN", "-1",
                     "1e308", "9" * 40, "🙂", "\ufeff{}"])
NUMBER_TEXT = st.sampled_from(["nan", "inf", "-inf", "-1", "-0.0", "0", "1e308", "-1e308", "1e-320", "abc",
                               "1e400", "٣", "99999999999999999999999"]) | st.floats().map(repr) | st.integers(
    min_value=-(10**30), max_value=10**30).map(str)
WEIRD_NUMBERS = st.sampled_from([math.nan, math.inf, -math.inf, -1, -150, 0, 1e308, -1e308, 10**25, 5e-324, -0.0])
JSON_LEAF = (st.none() | st.booleans() | st.integers(min_value=-(10**30), max_value=10**30) | st.floats()
             | WEIRD_NUMBERS | ODD_TEXT)
JSON_VALUE = st.recursive(JSON_LEAF, lambda c: st.lists(c, max_size=4) | st.dictionaries(ODD_TEXT, c, max_size=4),
                          max_leaves=12)


def _load_examples() -> list[Any]:
    docs: list[Any] = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(EXAMPLES.glob("*.json"))]
    from lutarterial.records.synthetic import make_records

    docs.extend(make_records(2, seed=7))
    return docs


EXAMPLE_DOCS = _load_examples()


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out.extend(_paths(v, (*prefix, k)))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out.extend(_paths(v, (*prefix, i)))
    return out


@st.composite
def mutated_example(draw: Any) -> Any:
    """A valid example document with 1-3 leaves or subtrees replaced by nonsense."""
    doc = copy.deepcopy(draw(st.sampled_from(EXAMPLE_DOCS)))
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        paths = [p for p in _paths(doc) if p]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = doc
        for k in path[:-1]:
            parent = parent[k]
        parent[path[-1]] = draw(JSON_VALUE | WEIRD_NUMBERS)
    return doc


TAC_TEXT = st.lists(
    st.tuples(ODD_TEXT, NUMBER_TEXT, NUMBER_TEXT, NUMBER_TEXT), min_size=0, max_size=5
).map(lambda rows: "voi,time_h,activity_mbq,mass_g\n" + "".join(",".join(r) + "\n" for r in rows))

FILE_CONTENT = st.one_of(
    st.binary(min_size=1, max_size=600).map(lambda b: ("bytes", b)),
    JSON_VALUE.map(lambda v: ("json", json.dumps(v, allow_nan=True).encode())),
    mutated_example().map(lambda v: ("json", json.dumps(v, allow_nan=True, ensure_ascii=False).encode())),
    TAC_TEXT.map(lambda t: ("csv", t.encode())),
    st.sampled_from([b"", b"{}", b"[]", b"null", b'{"labs": 5}', b'{"assessments": [1]}',
                     b"\x1f\x8b\x08\x00\x00\x00", b"NaN", b'{"administrations": 5, "decision_date": "2025-01-01"}'])
    .map(lambda b: ("fixed", b)),
)


# --------------------------------------------------------------------------------------------
# argument generation from the command's signature

def _decls(p: inspect.Parameter) -> tuple[str, ...]:
    return tuple(getattr(p.default, "param_decls", None) or ())


def _is_argument(p: inspect.Parameter) -> bool:
    return type(p.default).__name__ == "ArgumentInfo"


def _required(p: inspect.Parameter) -> bool:
    return getattr(p.default, "default", None) is ...


@st.composite
def argv_for(draw: Any, name: str, callback: Any, tmp: Path, corrupt_db: Path) -> tuple[list[str], list[str]]:
    """(argv, kinds of the input files written) for one generated invocation of ``name``."""
    argv = name.split()
    kinds: list[str] = []
    counter = [0]

    def new_file() -> str:
        counter[0] += 1
        kind, content = draw(FILE_CONTENT)
        suffix = draw(st.sampled_from([".json", ".csv", ".nii.gz", ".dcm", ""]))
        p = tmp / f"in{counter[0]}{suffix}"
        p.write_bytes(content)
        kinds.append(kind)
        return str(p)

    for pname, p in inspect.signature(callback).parameters.items():
        ann = str(p.annotation)
        decls = _decls(p)
        opt = next((d for d in decls if d.startswith("--")), None)
        required = _required(p)
        if "bool" in ann:
            if opt and opt.split("/")[0] == "--json" and draw(st.booleans()):
                argv.append("--json")
            continue
        if pname == "db" or opt == "--db":
            argv += ["--db", draw(st.sampled_from([f"sqlite:///{corrupt_db}", str(corrupt_db), "nonsense://x",
                                                    "sqlite:////nonexistent/dir/x.db"]))]
            continue
        if not required and not draw(st.booleans()):
            continue
        many = "list[" in ann
        n = draw(st.integers(min_value=1, max_value=2)) if many else 1
        for _ in range(n):
            if "Path" in ann:
                value = str(tmp / f"out{counter[0]}") if opt in OUTPUTS else new_file()
            elif "float" in ann or "int" in ann:
                value = draw(NUMBER_TEXT)
            else:
                value = draw(ODD_TEXT)
            if opt is None or _is_argument(p):
                argv.append(value)
            else:
                argv.append(f"{opt}={value}")
    return argv, kinds


@pytest.fixture(scope="module")
def corrupt_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    p = tmp_path_factory.mktemp("db") / "corrupt.db"
    p.write_bytes(b"SQLite format 3\x00" + bytes(range(256)) * 16)
    return p


def test_every_command_is_fuzzed_or_skipped_with_a_reason() -> None:
    names = {n for n, _ in leaf_commands()}
    assert {"screen", "quantify", "uptake", "dose", "kernel", "grade", "recist", "next-dose", "ae-table",
            "audit verify", "db upgrade", "user list"} <= names
    assert set(SKIP) <= names


@pytest.mark.parametrize(("name", "callback"), COMMANDS, ids=[n for n, _ in COMMANDS])
def test_cli_command_survives_nonsense(name: str, callback: Any, tmp_path_factory: pytest.TempPathFactory,
                                       corrupt_db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tmp = tmp_path_factory.mktemp("fz")
    monkeypatch.chdir(tmp)  # commands writing default outputs (or to a generated name) write here

    @(FUZZ_DOMAIN if name in DOMAIN else FUZZ)
    @given(data=st.data())
    def inner(data: Any) -> None:
        argv, kinds = data.draw(argv_for(name, callback, tmp, corrupt_db))
        code, out, err = invoke(argv)
        check_outcome(argv, code, out, err)
        if kinds and all(k == "bytes" for k in kinds) and name not in ("dose",):
            # random bytes are never a valid input: no result may come out of them
            assert code != 0, f"{argv} accepted random bytes:\n{out[:500]}"

    inner()

"""Issue 9 regressions, dosimetry: ``dose --tac`` with a time of 1e300 h gave a dose; binary garbage
gave a traceback. Every nonsense TAC value is now an error naming the line; limits on both sides."""

from __future__ import annotations

import json

import pytest

from lutarterial.cli.main import run

HEADER = "voi,time_h,activity_mbq,mass_g\n"
GOOD = [("kidney", "4", "100", "300"), ("kidney", "24", "80", "300"), ("kidney", "96", "40", "300")]


def cli(capsys, *args):
    try:
        run([str(a) for a in args])
        code = 0
    except SystemExit as exc:
        code = exc.code or 0
    out = capsys.readouterr()
    return code, out.out, out.err


def _tac(tmp_path, rows):
    p = tmp_path / "tac.csv"
    p.write_text(HEADER + "".join(",".join(r) + "\n" for r in rows), encoding="utf-8")
    return p


def test_good_tac_gives_a_dose(tmp_path, capsys):
    code, out, err = cli(capsys, "dose", "--tac", _tac(tmp_path, GOOD), "--json")
    assert code == 0, err
    assert json.loads(out)["vois"][0]["dose_gy"] > 0


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("time_h", "1e300", "time after injection"),
        ("time_h", "8766.1", "time after injection"),
        ("time_h", "-4", "time_h"),
        ("time_h", "nan", "finite"),
        ("time_h", "inf", "finite"),
        ("activity_mbq", "-1", "negative"),
        ("activity_mbq", "100001", "activity"),
        ("activity_mbq", "Infinity", "finite"),
        ("mass_g", "0", "mass_g"),
        ("mass_g", "500001", "VOI mass"),
        ("mass_g", "abc", "not a number"),
    ],
)
def test_nonsense_tac_values_are_errors(tmp_path, capsys, column, value, message):
    idx = HEADER.strip().split(",").index(column)
    rows = [list(r) for r in GOOD]
    rows[2][idx] = value
    code, out, err = cli(capsys, "dose", "--tac", _tac(tmp_path, rows), "--json")
    assert code == 2 and out == "", out
    assert message in err and "Traceback" not in err


def test_limits_inside_are_accepted(tmp_path, capsys):
    rows = [("kidney", "4", "100000", "500000"), ("kidney", "24", "50000", "500000"), ("kidney", "8766", "1", "500000")]
    code, _, err = cli(capsys, "dose", "--tac", _tac(tmp_path, rows), "--json")
    assert code == 0, err


@pytest.mark.parametrize("content", [bytes(range(256)) * 8, b"\xff\xfe\xfa not utf-8", b"\x00\x00\x00"])
def test_binary_garbage_is_a_clear_error(tmp_path, capsys, content):
    p = tmp_path / "tac.csv"
    p.write_bytes(content)
    code, out, err = cli(capsys, "dose", "--tac", p)
    assert code == 2 and "tac.csv" in err and "Traceback" not in err and "internal error" not in err


@pytest.mark.parametrize("opt", ["--teff-h", "--kidney-limit-gy", "--time-h"])
@pytest.mark.parametrize("value", ["inf", "nan", "-1"])
def test_nonfinite_or_negative_options_refused(tmp_path, capsys, opt, value):
    code, out, err = cli(capsys, "dose", "--tac", _tac(tmp_path, GOOD), f"{opt}={value}")
    assert code == 2 and out == "" and opt in err

"""Issue 9: CSV exports neutralise formula-leading text cells; numbers stay numbers."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from lutarterial.registry import Registry, services
from lutarterial.registry.csv_safety import neutralise
from lutarterial.registry.exports import _cell, export_csv

from .conftest import Team, enrolled_participant


@pytest.mark.parametrize("text", ["=1+2", "+1", "-2+3", "@SUM(A1:A9)", "\tx", "\rx", "=HYPERLINK(\"http://x\")"])
def test_formula_leading_text_gets_an_apostrophe(text: str) -> None:
    assert neutralise(text) == "'" + text and _cell(text) == "'" + text


@pytest.mark.parametrize("value, out", [(-1.5, "-1.5"), (-3, "-3"), (0.0, "0.0"), ("a=1", "a=1"), ("", ""),
                                        ("'=already", "'=already"), (None, "")])
def test_numbers_and_harmless_text_are_unchanged(value: object, out: str) -> None:
    assert _cell(value) == out


def test_export_neutralises_free_text(reg: Registry, team: Team, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LUTARTERIAL_DATA_DIR", str(tmp_path / "data"))
    pid = enrolled_participant(reg, team)
    with reg.session() as s:
        services.withdraw_consent(s, team.coord_bdx, pid, withdrawal_date="2024-06-01",
                                  reason="@SUM(A1:A2) withdrawn", note="=cmd|' /C calc'!A0")
    with reg.session(readonly=True) as s:
        out = export_csv(s, team.admin, tmp_path / "exp")
    consents = list(csv.DictReader((out / "consents.csv").open(encoding="utf-8")))
    assert consents[0]["withdrawal_note"] == "'=cmd|' /C calc'!A0"
    reasons = [r["reason"] for r in csv.DictReader((out / "audit_entries.csv").open(encoding="utf-8"))]
    assert "'@SUM(A1:A2) withdrawn" in reasons and "@SUM(A1:A2) withdrawn" not in reasons

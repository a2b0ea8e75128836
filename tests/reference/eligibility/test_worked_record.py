"""A worked, hand-computed screening of a realistic French-lab record (data/nimes_record.json).

Hand computation (screening date 2024-09-16, protocol version 2 asked for explicitly; version 1 is
the default since issue 10):
* INC06 Cockcroft-Gault: woman, 62 years (born 1962-05-02), 58 kg, creatinine 95 umol/L
  = 95 / 88.40 = 1.0747 mg/dL -> (140 - 62) x 58 / (72 x 1.0747) x 0.85 = 49.70 mL/min < 50: fail.
  ALT 0.95 ukat/L with ULN 0.58 ukat/L = 1.64 x ULN; AST 41 UI/L, ULN 35 = 1.17 x ULN (both pass).
* INC07 platelets 88 G/L on 2024-09-10 (the 60 G/L of 2024-06-20 predates the 4th cycle of
  2024-06-24 and is set aside): 88 < 100 G/L (version 2) -> fail; under version 1 (>= 75) pass.
* EXC06 albumin 29 g/L < 30 but PT 82 % within the lab's range (>= 70 %) -> pass.
* INC09 post-menopausal woman -> pass although contraception is not documented.
Tolerances: CrCl to 0.05 mL/min (factor 88.40 vs 88.42 changes it by 0.01).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lutarterial.eligibility import screen
from lutarterial.records import parse_record

DATA = Path(__file__).with_name("data") / "nimes_record.json"


@pytest.fixture(scope="module")
def record():
    return parse_record(json.loads(DATA.read_text(encoding="utf-8")))


def test_worked_record_version_2(record):
    result = screen(record, protocol_version="2")
    assert result.as_of.isoformat() == "2024-09-16" and result.protocol_version == "2"
    statuses = {c.id: c.status.value for c in result.criteria}
    assert statuses == {**{cid: "pass" for cid in statuses}, "INC06": "fail", "INC07": "fail"}
    assert result.verdict.value == "ineligible"
    inc06 = result.criterion("INC06")
    cg = next(e for e in inc06.evidence if e.label.startswith("CrCl"))
    assert cg.value == pytest.approx(49.70, abs=0.05)
    assert "ALT 1.64 x ULN" in inc06.reason and "AST 1.17 x ULN" in inc06.reason
    inc07 = result.criterion("INC07")
    assert any(e.note.startswith("not after the 4th LUTATHERA cycle") and e.value == 60 for e in inc07.evidence)


def test_worked_record_version_1(record):
    assert screen(record).protocol_version == "1"  # the default (issue 10)
    result = screen(record, protocol_version="1")
    assert result.criterion("INC07").status.value == "pass"
    assert result.failed == ["INC06"]

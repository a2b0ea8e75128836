"""Hospital data in (issue 15): lab files (French CSV, FHIR Bundle, NDJSON) and EHR screening bundles,
through the API (SQLite and PostgreSQL) and the registry service (atomicity, identity matching)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

EXAMPLES = Path(__file__).resolve().parents[3] / "docs" / "examples"
CSV = (EXAMPLES / "labs" / "labs_fr.csv").read_text(encoding="utf-8")


def _participant(client: Any, site: str = "BDX") -> str:
    r = client.post("/api/v1/participants", json={"site": site, "reason": "new", "sex": "F"})
    assert r.status_code == 201, r.text
    return str(r.json()["trial_number"])


def _import(client: Any, tn: str, content: Any, fmt: str | None = None) -> Any:
    body = {"content": content, "reason": "hospital lab export"}
    if fmt:
        body["format"] = fmt
    return client.post(f"/api/v1/participants/{tn}/labs:import", json=body)


def test_french_csv_is_converted_graded_deduplicated_and_bad_rows_listed(login: Any) -> None:
    coord = login("coord.bdx")
    tn = _participant(coord)
    assert tn == "BDX-001"
    r = _import(coord, tn, CSV)
    assert r.status_code == 200, r.text
    s = r.json()
    assert s["format"] == "csv" and s["rows"] == 11
    assert (s["imported"], s["duplicates"], s["refused_count"]) == (6, 1, 4)
    reasons = " | ".join(f"{x['where']}: {x['reason']}" for x in s["refused"])
    assert "line 9" in reasons and "outside the physical limits" in reasons  # 920000 G/L
    assert "line 10" in reasons and "Glycémie" in reasons  # analyte the registry does not record
    assert "line 11" in reasons and "UI/L" in reasons  # a unit that does not fit haemoglobin
    assert "line 12" in reasons and "censored" in reasons
    got = {x["analyte"]: x for x in s["imported_rows"]}
    # CTCAE v5.0 grades (published criteria): PLT 92 with LLN 150 -> 1 (<LLN-75); ANC 0.9 -> 3 (<1.0-0.5);
    # Hb 9.4 g/dL -> 2 (<10.0-8.0); ALT 142 = 3.55 x ULN 40 -> 2 (>3.0-5.0 x ULN); bilirubin 41 = 2.41 x ULN 17
    # -> 2 (>1.5-3.0 x ULN); creatinine 88 below ULN 90 -> no grade 1+ (0)
    assert {k: got[k]["ctcae_grade"] for k in ("platelets", "neutrophils", "haemoglobin", "alt", "bilirubin")} == \
        {"platelets": 1, "neutrophils": 3, "haemoglobin": 2, "alt": 2, "bilirubin": 2}
    assert got["creatinine"]["ctcae_grade"] in (0, None)
    assert got["platelets"]["unit_canonical"] == "10*9/L" and got["platelets"]["value_canonical"] == pytest.approx(92)
    assert got["alt"]["collected_date"] == "2024-03-04"
    # the same file again: everything already there is a duplicate, nothing new is written
    again = _import(coord, tn, CSV).json()
    assert (again["imported"], again["duplicates"], again["refused_count"]) == (0, 7, 4)
    labs = coord.get(f"/api/v1/participants/{tn}").json()["labs"]
    assert len(labs) == 6
    audit = coord.get(f"/api/v1/participants/{tn}/audit").json()
    lab_rows = [a for a in audit if a["table_name"] == "lab_results"]
    assert len(lab_rows) == 6 and all(f"lab import {s['file_sha256'][:12]}" in a["reason"] for a in lab_rows)


def test_fhir_bundle_and_ndjson_import(login: Any) -> None:
    coord = login("coord.bdx")
    tn = _participant(coord)
    bundle = json.loads((EXAMPLES / "labs" / "bundle.json").read_text())
    s = _import(coord, tn, bundle).json()
    assert s["format"] == "fhir" and (s["imported"], s["refused_count"]) == (5, 2)
    refused = {x["where"]: x["reason"] for x in s["refused"]}
    assert "entered-in-error" in refused["entry 7 (Observation/lab-6)"]
    got = {x["analyte"]: x for x in s["imported_rows"]}
    assert got["creatinine"]["value_canonical"] == pytest.approx(1.3 * 88.42, rel=1e-3)  # mg/dL -> umol/L
    assert got["platelets"]["ctcae_grade"] == 1  # 75 x10^9/L is not <75.0 (grade 2): grade 1 (<LLN-75.0), boundary
    nd = (EXAMPLES / "labs" / "observations.ndjson").read_text()
    s2 = _import(coord, tn, nd, "ndjson").json()
    assert s2["format"] == "ndjson" and s2["imported"] == 5 and s2["duplicates"] == 0  # another date


def test_rows_for_another_participant_and_read_only_users_are_refused(login: Any) -> None:
    coord = login("coord.bdx")
    tn = _participant(coord)
    other = _participant(coord)
    text = "trial_number,analyte,value,unit,lln,uln,date\n" \
           f"{other},platelets,100,G/L,150,400,2024-01-01\n{tn},platelets,100,G/L,150,400,2024-01-01\n"
    s = _import(coord, tn, text).json()
    assert s["imported"] == 1 and "not " + tn in s["refused"][0]["reason"]
    r = _import(login("monitor"), tn, text)
    assert r.status_code == 403
    assert _import(login("coord.tls"), tn, text).status_code == 404  # another site's participant is not there


def test_bad_files_are_400_not_500(login: Any) -> None:
    coord = login("coord.bdx")
    tn = _participant(coord)
    assert _import(coord, tn, "a,b\n1,2\n", "csv").status_code == 400
    assert _import(coord, tn, "{not json", "fhir").status_code == 400
    assert _import(coord, tn, {"resourceType": "Patient"}).status_code == 400


def test_screening_from_ehr_bundle_is_stored_with_its_hash_and_without_identifiers(login: Any) -> None:
    coord = login("coord.bdx")
    r = coord.post("/api/v1/participants", json={"site": "BDX", "reason": "new", "consent_version": "v3.0",
                                                 "consent_date": "2024-01-02"})
    tn = r.json()["trial_number"]
    bundle = json.loads((EXAMPLES / "eligibility" / "bundle.json").read_text())
    r = coord.post(f"/api/v1/participants/{tn}/screening:import", json={"bundle": bundle, "reason": "EHR export",
                                                                                "as_of": "2024-06-03"})
    assert r.status_code == 201, r.text
    out = r.json()
    import hashlib

    canonical = json.dumps(bundle, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    assert out["bundle_sha256"] == hashlib.sha256(canonical).hexdigest()
    stored = coord.get(f"/api/v1/participants/{tn}").json()["screenings"][-1]
    assert stored["id"] == out["screening_id"] and stored["overall"] == out["overall"]
    patient = [e["resource"] for e in stored["record"]["entry"] if e["resource"]["resourceType"] == "Patient"][0]
    assert not {"name", "identifier", "telecom", "address"} & set(patient)

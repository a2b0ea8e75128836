"""Data dictionary: every field of the screening form has a human label (no field names), units
where the quantity has one, and the REDCap-style CSV has REDCap's columns and one row per field."""

from __future__ import annotations

import csv
import io

from lutarterial.datamanagement.dictionary import REDCAP_COLUMNS, load_data_dictionary, redcap_csv
from lutarterial.web.forms import dictionary_fields, field_groups, repeat_groups


def test_every_form_field_has_a_dictionary_label() -> None:
    dd = load_data_dictionary()
    paths = [f["path"] for f in dictionary_fields()]
    missing = [p for p in paths if p not in dd]
    assert not missing, missing
    for g in field_groups():
        for f in g["fields"]:
            assert f["label"] == dd[f["name"]].label and "_" not in f["label"], f["name"]
    assert dd["lutathera_cycles.activity_mbq"].unit == "MBq" and dd["patient.birth_date"].required


def test_lists_are_repeating_groups_not_json() -> None:
    assert not any(f["type"] in ("array", "object") for g in field_groups() for f in g["fields"])
    groups = {g["path"]: g for g in repeat_groups({"lutathera_cycles": [{"date": "2024-01-01", "route": "IV"}],
                                                  "post_therapy_scans": []})}
    assert set(groups) == {"lutathera_cycles", "post_therapy_scans", "inclusion_imaging", "cardiac.events"}
    assert groups["lutathera_cycles"]["rows"][0]["route"] == "IV"
    assert groups["post_therapy_scans"]["documented_none"] and not groups["inclusion_imaging"]["documented_none"]


def test_redcap_csv() -> None:
    rows = list(csv.reader(io.StringIO(redcap_csv(dictionary_fields()))))
    assert tuple(rows[0]) == REDCAP_COLUMNS
    assert len(rows) - 1 == len(dictionary_fields())
    by_var = {r[0]: r for r in rows[1:]}
    assert by_var["lutathera_cycles_activity_mbq"][6].startswith("unit: MBq")
    assert by_var["patient_birth_date"][7] == "date_ymd" and by_var["patient_birth_date"][12] == "y"
    assert by_var["tumour_histologically_proven"][3] == "yesno"


def test_record_from_form_folds_rows_back() -> None:
    from lutarterial.web.forms import record_from_form

    class Form(dict):  # the part of starlette's FormData the function uses
        pass

    form = Form({"record_json": "{}", "grpmark.lutathera_cycles": "1", "grp.lutathera_cycles.0.date": "2024-01-05",
                 "grp.lutathera_cycles.0.route": "IV", "grp.lutathera_cycles.0.activity_mbq": "7400",
                 "grp.lutathera_cycles.0.dose_reduced_for_toxicity": "false", "grp.lutathera_cycles.3.date": "",
                 "grpmark.post_therapy_scans": "1", "grpnone.post_therapy_scans": "1", "grpmark.inclusion_imaging": "1"})
    rec = record_from_form(form)
    assert rec["lutathera_cycles"] == [{"date": "2024-01-05", "route": "IV", "activity_mbq": 7400.0,
                                        "dose_reduced_for_toxicity": False}]
    assert rec["post_therapy_scans"] == [] and "inclusion_imaging" not in rec

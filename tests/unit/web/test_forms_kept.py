"""web.forms helpers of "values kept with the message" (issue 13): what a refused form keeps, the
rows of a repeating group as typed, and the screening record read without refusing."""

from __future__ import annotations

import pytest

from lutarterial.errors import InvalidInputError
from lutarterial.web import forms


def test_kept_keeps_every_typed_value_but_secrets() -> None:
    out = forms.kept("sign", {"meaning": "reviewed and approved", "username": "inv.bdx", "password": "s3cret",
                              "csrf_token": "t", "upload": object()}, "Not signed: wrong password")
    assert out == {"kept": {"form": "sign", "error": "Not signed: wrong password",
                            "typed": {"meaning": "reviewed and approved", "username": "inv.bdx"}}}


def test_group_rows_in_row_order_empty_rows_dropped() -> None:
    typed = {"grp.lesions.10.id": "L3", "grp.lesions.2.id": "L1", "grp.lesions.2.organ": " liver ",
             "grp.lesions.5.id": "", "grp.lesions.5.organ": "", "grp.lesions.x.id": "bad", "grp.other.0.id": "N1"}
    assert forms.group_rows(typed, "grp.lesions.") == [{"id": "L1", "organ": "liver"}, {"id": "L3"}]


def test_record_from_form_strict_refuses_lenient_keeps_as_typed() -> None:
    form = {"record_json": "{", "rec.patient.birth_date": "1951-01-01", "grpmark.lutathera_cycles": "1",
            "grp.lutathera_cycles.0.activity_mbq": "lots", "grp.lutathera_cycles.1.activity_mbq": "7400",
            "meas.0.analyte": "platelets", "meas.0.value": "many", "meas.0.extra": "{not json"}
    with pytest.raises(InvalidInputError, match="not valid JSON"):
        forms.record_from_form(form)
    with pytest.raises(InvalidInputError, match="measurement 1: the hidden extra fields are not JSON"):
        forms.record_from_form({**form, "record_json": "{}"})  # was a 500 (JSONDecodeError)
    with pytest.raises(InvalidInputError, match="measurement 1: value 'many' is not a number"):
        forms.record_from_form({**form, "record_json": "{}", "meas.0.extra": ""})
    with pytest.raises(InvalidInputError, match="row 1, activity_mbq"):
        forms.record_from_form({**form, "record_json": "{}", "meas.0.extra": "", "meas.0.value": "90"})
    record, box = forms.typed_record(form)
    assert box == "{"  # the JSON box as typed
    assert record["patient"] == {"birth_date": "1951-01-01"}
    assert record["lutathera_cycles"] == [{"activity_mbq": "lots"}, {"activity_mbq": 7400.0}]
    assert record["measurements"] == [{"analyte": "platelets", "value": "many"}]
    record, box = forms.typed_record({**form, "record_json": "{}"})
    assert box.startswith("{\n") and '"lots"' in box

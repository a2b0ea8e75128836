"""Units: every conversion the screening and grading engines rely on, and refusals."""

import math

import pytest
from hypothesis import given, strategies as st

from lutarterial.errors import UnitError
from lutarterial.units import analyte_by_loinc, analyte_by_name, convert, parse_unit, to_canonical


@pytest.mark.parametrize(
    ("analyte", "value", "unit", "expected"),
    [
        # haemoglobin: g/dL canonical; g/L /10; mmol/L x 1.61145 (Hb monomer)
        ("haemoglobin", 8.0, "g/dL", 8.0),
        ("haemoglobin", 80.0, "g/L", 8.0),
        ("haemoglobin", 80.0, "g/l", 8.0),
        ("haemoglobin", 4.9645, "mmol/L", 8.0),
        # counts to 10^9/L
        ("neutrophils", 1500.0, "/mm3", 1.5),
        ("neutrophils", 1500.0, "/mm³", 1.5),
        ("neutrophils", 1500.0, "/uL", 1.5),
        ("neutrophils", 1500.0, "/µL", 1.5),
        ("neutrophils", 1500.0, "{cells}/uL", 1.5),
        ("neutrophils", 1.5, "10*9/L", 1.5),
        ("neutrophils", 1.5, "10^9/L", 1.5),
        ("neutrophils", 1.5, "x10^9/L", 1.5),
        ("neutrophils", 1.5, "×10⁹/L", 1.5),
        ("neutrophils", 1.5, "G/L", 1.5),
        ("neutrophils", 1.5, "10*3/uL", 1.5),
        ("platelets", 75000.0, "/mm3", 75.0),
        ("platelets", 75.0, "x 10e9/L", 75.0),  # CTCAE's notation
        ("platelets", 75.0, "10e9/L", 75.0),
        ("platelets", 75.0, "K/uL", 75.0),
        ("platelets", 75.0, "giga/L", 75.0),
        ("platelets", 75.0, "G/L", 75.0),
        # creatinine: mg/dL x 88.42 = umol/L
        ("creatinine", 1.0, "mg/dL", 88.42),
        ("creatinine", 88.42, "umol/L", 88.42),
        ("creatinine", 88.42, "µmol/L", 88.42),
        ("creatinine", 0.08842, "mmol/L", 88.42),
        ("creatinine", 10.0, "mg/L", 88.42),
        # bilirubin: mg/dL x 17.1 = umol/L
        ("bilirubin", 1.0, "mg/dL", 17.1),
        ("albumin", 3.0, "g/dL", 30.0),
        ("alt", 40.0, "IU/L", 40.0),
        ("alt", 40.0, "UI/L", 40.0),
        ("alt", 1.0, "ukat/L", 60.0),
        ("weight", 154.3236, "[lb_av]", 70.0),
        ("height", 1.75, "m", 175.0),
        ("crcl", 1.0, "mL/s", 60.0),
        ("pt", 12.5, "sec", 12.5),
        ("pt", 12.5, "s", 12.5),
        ("lvef", 0.45, "1", 45.0),
        ("systolic_bp", 21.3316, "kPa", 160.0),
    ],
)
def test_to_canonical(analyte, value, unit, expected):
    assert to_canonical(analyte, value, unit) == pytest.approx(expected, rel=5e-4)  # published factors are rounded to 4 digits


@pytest.mark.parametrize(
    ("analyte", "unit"),
    [
        ("platelets", "g/L"),  # mass, not a count: case matters
        ("haemoglobin", "G/L"),
        ("creatinine", "U/L"),
        ("crcl", "mL/min/1.73m2"),  # eGFR normalised to BSA is not a clearance
        ("crcl", "mL/min/{1.73_m2}"),
        ("neutrophils", "furlongs"),
        ("neutrophils", ""),
        ("alt", "mg/"),
    ],
)
def test_incompatible_or_unknown_units_refused(analyte, unit):
    with pytest.raises(UnitError) as info:
        to_canonical(analyte, 1.0, unit)
    assert unit in str(info.value) or "missing unit" in str(info.value)


def test_amount_to_mass_needs_molar_mass():
    with pytest.raises(UnitError):
        convert(1.0, "mmol/L", "g/L")
    assert convert(1.0, "mmol/L", "g/L", molar_mass_g_per_mol=100.0) == pytest.approx(0.1)


def test_activity_units():
    assert convert(7.4, "GBq", "MBq") == pytest.approx(7400.0)
    assert convert(1.0, "mCi", "MBq") == pytest.approx(37.0)


def test_lookup_by_loinc_and_alias():
    assert analyte_by_loinc("718-7").name == "haemoglobin"
    assert analyte_by_loinc("26515-7").name == "platelets"
    assert analyte_by_loinc("0000-0") is None
    assert analyte_by_name("Hemoglobin").name == "haemoglobin"
    assert analyte_by_name("SGPT").name == "alt"


def test_non_finite_value_refused():
    with pytest.raises(UnitError):
        convert(math.nan, "g/L", "g/dL")


@pytest.mark.parametrize("text", ["/0", "0/L", "10*400/L", "10*-400/L", "10*25/L"])
def test_degenerate_numeric_factors_refused(text):
    with pytest.raises(UnitError):
        parse_unit(text)


def test_powers_of_ten_within_range_accepted():
    assert parse_unit("10*24/L").factor == pytest.approx(1e27)
    assert parse_unit("10*-24/L").factor == pytest.approx(1e-21)


@given(st.text(alphabet=st.sampled_from(list("0123456789/.*^-eEgGLlmuµ%[]{}x ")), max_size=12))
def test_parser_never_crashes_on_unit_like_text(text):
    try:
        parse_unit(text)
    except UnitError:
        pass


@given(st.text(max_size=12))
def test_parser_never_crashes(text):
    try:
        parse_unit(text)
    except UnitError:
        pass

"""Protocol files: every version loads, every criterion is wired, bad files are refused."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest
import yaml

from lutarterial.eligibility import PatientData, screen_patient, unwired_criteria
from lutarterial.eligibility.rules import RULES
from lutarterial.errors import ProtocolDefinitionError
from lutarterial.protocol import available_versions, load_protocol, load_protocol_file, version_in_force
from lutarterial.protocol.loader import all_protocols, choose_version

EXPECTED_IDS = [f"INC{i:02d}" for i in range(1, 12)] + [f"EXC{i:02d}" for i in range(1, 13)]
VERSIONS_DIR = Path(__file__).resolve().parents[3] / "src" / "lutarterial" / "protocol" / "versions"


def test_versions_are_1_and_2():
    assert available_versions() == ("1", "2")


@pytest.mark.parametrize("version", ["1", "2"])
def test_every_criterion_of_every_version_is_wired(version):
    protocol = load_protocol(version)
    assert list(protocol.ids) == EXPECTED_IDS
    assert unwired_criteria(protocol) == []
    assert all(cid in RULES for cid in protocol.ids)


def test_no_rule_without_a_criterion():
    ids = {c for p in all_protocols() for c in p.ids}
    assert set(RULES) == ids


@pytest.mark.parametrize("version", ["1", "2"])
def test_every_rule_finds_its_thresholds_and_windows(version):
    # An empty record exercises every rule's early paths; a ProtocolDefinitionError here
    # would mean a rule asks for a threshold or window the file does not define.
    result = screen_patient(PatientData(record_id="x"), as_of=dt.date(2024, 6, 3), protocol=load_protocol(version))
    assert len(result.criteria) == 23


@pytest.mark.parametrize("version", ["1", "2"])
def test_criteria_carry_text_and_interpretation(version):
    p = load_protocol(version)
    for c in p.criteria:
        assert c.text and c.title
        for w in c.windows.values():
            assert w.interpretation, f"{c.id}: every window is a judgement call and must say so"
    assert "kept once" in " ".join(p.criterion("EXC08").interpretation)
    assert p.criterion("EXC02").window("scan").anchor == "last_lutathera_cycle"


def test_version_2_differs_from_1_only_in_the_platelet_threshold():
    v1, v2 = load_protocol("1"), load_protocol("2")
    assert v1.default and not v2.default
    for c1, c2 in zip(v1.criteria, v2.criteria):
        if c1.id != "INC07":
            assert c1 == c2
            continue
        assert c1.threshold("platelets").value == 75000 and c2.threshold("platelets").value == 100000
        assert c1.threshold("platelets").unit == c2.threshold("platelets").unit == "/mm3"
        assert [t for t in c1.thresholds if t.name != "platelets"] == [t for t in c2.thresholds if t.name != "platelets"]
        assert c1.windows == c2.windows


def test_thresholds_in_canonical_units():
    inc07 = load_protocol("1").criterion("INC07")
    assert inc07.threshold("haemoglobin").canonical_value() == pytest.approx(8.0, rel=1e-12)
    assert inc07.threshold("neutrophils").canonical_value() == pytest.approx(1.5, rel=1e-12)
    assert inc07.threshold("platelets").canonical_value() == pytest.approx(75.0, rel=1e-12)


@pytest.mark.parametrize("day", [dt.date(2019, 1, 1), dt.date(2021, 4, 1), dt.date(2023, 1, 1), dt.date(2030, 1, 1)])
def test_default_version_applies_on_any_date_without_site_configuration(day):
    # issue 10: no version is chosen by an (invented) file date; version 1 is the default
    assert version_in_force(day).version == "1"
    chosen, why = choose_version(day)
    assert chosen.version == "1" and why.startswith("default version 1")


def test_no_version_file_carries_an_invented_date():
    for p in all_protocols():
        assert p.effective_date is None and p.effective_date_known is False
        assert p.source_document and p.source_seen


@pytest.mark.parametrize(("day", "version"), [
    (dt.date(2025, 2, 28), "1"),  # the day before the site's configured date
    (dt.date(2025, 3, 1), "2"),  # from the configured date on
    (dt.date(2030, 1, 1), "2"),
])
def test_site_configuration_sets_the_effective_date(day, version):
    sites = {"2": dt.date(2025, 3, 1)}
    assert version_in_force(day, sites).version == version
    chosen, why = choose_version(day, site_effective_dates=sites, site="BDX")
    assert chosen.version == version
    assert ("site configuration" in why and "BDX" in why) if version == "2" else why.startswith("default")


def test_explicit_version_wins_over_site_configuration():
    chosen, why = choose_version(dt.date(2030, 1, 1), explicit="1", site_effective_dates={"2": dt.date(2025, 3, 1)})
    assert chosen.version == "1" and "--protocol-version" in why


def _write(tmp_path: Path, mutate) -> Path:
    data = yaml.safe_load((VERSIONS_DIR / "v1.yaml").read_text(encoding="utf-8"))
    mutate(data)
    path = tmp_path / "draft.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def _inc07(data):
    return next(c for c in data["criteria"] if c["id"] == "INC07")


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: _inc07(d)["thresholds"][0].update(operator="=>"), "operator"),
        (lambda d: _inc07(d)["thresholds"][0].update(unit="g/dl/furlong"), "unit"),
        (lambda d: _inc07(d)["thresholds"][2].update(unit="g/L"), "unit"),
        (lambda d: _inc07(d)["thresholds"][0].update(analyte="unobtainium"), "analyte"),
        (lambda d: _inc07(d)["thresholds"][0].update(value="eight"), "number"),
        (lambda d: _inc07(d)["thresholds"][0].update(uln_multiple=2.5), "exactly one"),
        (lambda d: _inc07(d).update(kind="exclusion"), "kind"),
        (lambda d: _inc07(d).update(text=""), "text"),
        (lambda d: _inc07(d).update(extra_key=1), "unknown keys"),
        (lambda d: d["criteria"].append(dict(_inc07(d))), "duplicate"),
        (lambda d: d.update(version=2), "version"),
        (lambda d: d.update(effective_date="yesterday"), "effective_date"),
        (lambda d: d.pop("effective_date"), "effective_date"),
        (lambda d: d.pop("effective_date_known"), "effective_date_known"),
        (lambda d: d.update(effective_date_known=True), "effective_date_known"),
        (lambda d: d.pop("provenance"), "provenance"),
        (lambda d: d["provenance"].update(seen=""), "provenance"),
        (lambda d: _inc07(d)["windows"].update(labs={"anchor": "moon_phase"}), "anchor"),
        (lambda d: _inc07(d)["windows"].update(labs={"max_age_days": -1}), "max_age_days"),
        (lambda d: _inc07(d).update(id="INC7"), "INC01"),
    ],
)
def test_loader_refuses_invalid_definitions(tmp_path, mutate, message):
    with pytest.raises(ProtocolDefinitionError, match=message):
        load_protocol_file(_write(tmp_path, mutate))


def test_loader_accepts_the_unmodified_file(tmp_path):
    p = load_protocol_file(_write(tmp_path, lambda d: None))
    assert p == dataclasses.replace(load_protocol("1"))


def test_loader_refuses_invalid_yaml(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("criteria: [unclosed", encoding="utf-8")
    with pytest.raises(ProtocolDefinitionError, match="YAML"):
        load_protocol_file(path)

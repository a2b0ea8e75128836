"""Parameters as data: every entry sourced and checked; user files validated."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lutarterial.errors import InvalidInputError
from lutarterial.pbpk import load_parameters


def test_packaged_parameters_have_units_sources_and_plausible_values() -> None:
    pp = load_parameters()
    assert len(pp.specs) > 60
    for s in pp.specs.values():
        assert s.source and s.unit, s.name
        assert s.value >= 0 and s.cv >= 0
        if s.fraction:
            assert 0 <= s.value <= 1
    # refitted to the published 177Lu spleen dose; Siebinga 2021's 4.40 nmol stays named in the source
    spleen = pp.specs["receptor_spleen_nmol"]
    assert spleen.value == 1.40 and "[FITTED]" in spleen.source and "4.40" in spleen.source
    assert pp.specs["receptor_liver_nmol"].value == 7.80


def test_sampling_keeps_fractions_in_range_and_medians_at_typical_values() -> None:
    pp = load_parameters()
    s = pp.sample(4000, np.random.default_rng(0))
    assert np.all((s["liver_right_lobe_fraction"] > 0) & (s["liver_right_lobe_fraction"] < 1))
    assert np.median(s["receptor_liver_nmol"]) == pytest.approx(7.8, rel=0.05)
    cv = np.std(np.log(s["gfr_l_per_h"]))
    assert cv == pytest.approx(np.sqrt(np.log1p(0.25 ** 2)), rel=0.05)


@pytest.mark.parametrize("text,match", [
    ("parameters:\n  gfr_l_per_h: -1\n", "negative"),
    ("parameters:\n  gfr_l_per_h: .nan\n", "not finite"),
    ("parameters:\n  liver_right_lobe_fraction: 1.2\n", "outside 0-1"),
    ("parameters:\n  hepatic_artery_right_fraction: -0.1\n", "negative"),
    ("parameters:\n  no_such_thing: 1\n", "unknown PBPK parameter"),
    ("parameters:\n  gfr_l_per_h: {value: 7, unit: mL/min}\n", "must be in"),
    ("parameters:\n  gfr_l_per_h: abc\n", "not a number"),
    ("just text\n", "parameters"),
    ("parameters:\n  flow_fraction_kidneys: 0.9\n", "sum to"),
])
def test_bad_user_parameter_files_are_refused(tmp_path: Path, text: str, match: str) -> None:
    f = tmp_path / "p.yaml"
    f.write_text(text)
    with pytest.raises(InvalidInputError, match=match):
        load_parameters(f)


def test_user_file_overrides_and_boundaries(tmp_path: Path) -> None:
    f = tmp_path / "p.yaml"
    f.write_text("parameters:\n  liver_right_lobe_fraction: 1.0\n  gfr_l_per_h: {value: 3.6, cv: 0.1}\n")
    pp = load_parameters(f)
    assert pp.specs["liver_right_lobe_fraction"].value == 1.0
    assert pp.specs["gfr_l_per_h"].value == 3.6 and pp.specs["gfr_l_per_h"].cv == 0.1
    f.write_text("parameters:\n  liver_right_lobe_fraction: 0.0\n")
    assert load_parameters(f).specs["liver_right_lobe_fraction"].value == 0.0
    with pytest.raises(InvalidInputError, match="does not exist"):
        load_parameters(tmp_path / "missing.yaml")

"""Organs at risk in voxel dosimetry are measured on the imaging background mask (issue 10, item 4).

A kidney (spleen, marrow, healthy liver) VOI loses every voxel of a ``lesion``/``extrahepatic``
VOI for every per-VOI number — dose statistics, DVH, gEUD, TIA, kinetics, BED — by the imaging
rule itself (:func:`lutarterial.imaging.metrics.measured_vois`), with the imaging note. Before,
a kidney overlapped by a lesion 1000 times hotter reported a mean dose of 127.5 Gy and a max of
1340 Gy; now 3.8 / 23.1 Gy, those of its own voxels. Lesions and a drawn liver keep their masks.
The hypothesis property (dosimetry masks = imaging masks, statistics blind to lesion doses) is in
``tests/unit/imaging/test_metric_consistency.py`` next to the imaging one.
"""

from __future__ import annotations

import math
from unittest.mock import patch

import numpy as np
import pytest

from lutarterial.dosimetry.metrics import d_x
from lutarterial.dosimetry.workflow import voxel_dosimetry
from lutarterial.errors import InvalidInputError
from lutarterial.imaging.metrics import quantify
from lutarterial.imaging.types import Geometry, Image, LabelMap, Quantity, VoiKind, VoiSpec

SHAPE = (16, 16, 16)
VOXEL_MM = (4.8, 4.8, 4.8)
TIMES = [24.0, 72.0, 168.0]
LN2 = math.log(2)


def _box(lo, size):
    m = np.zeros(SHAPE, dtype=bool)
    m[tuple(slice(a, a + s) for a, s in zip(lo, size, strict=True))] = True
    return m


KIDNEY = _box((3, 3, 3), (8, 6, 6))  # 288 voxels
LESION = _box((8, 6, 6), (4, 4, 4))  # 64 voxels, 27 of them inside the kidney
MASKS = {"kidney": KIDNEY, "lesion 1": LESION}
KINDS = {"kidney": "kidney", "lesion 1": "lesion"}


def _maps(lesion_bqml: float) -> list[np.ndarray]:
    """Kidney 1e5 Bq/mL (Teff 40 h), lesion ``lesion_bqml`` (Teff 120 h), 2 kBq/mL elsewhere."""
    out = []
    for t in TIMES:
        a = np.full(SHAPE, 2e3)
        a[KIDNEY] = 1e5 * math.exp(-LN2 / 40 * t)
        a[LESION] = lesion_bqml * math.exp(-LN2 / 120 * t)
        out.append(a)
    return out


def _run(lesion_bqml: float, voxel_tia: str = "voi_fit", masks=MASKS, kinds=KINDS):
    dose, res = voxel_dosimetry(_maps(lesion_bqml), TIMES, VOXEL_MM, masks, kinds=kinds, voxel_tia=voxel_tia)
    return dose, {v["voi"]: v for v in res["vois"]}, res["notes"]


@pytest.mark.parametrize("voxel_tia", ["voi_fit", "voxel"])
def test_kidney_dose_statistics_are_those_of_kidney_minus_lesion(voxel_tia):
    dose, vois, notes = _run(1e8, voxel_tia)
    own = dose[KIDNEY & ~LESION]  # by hand
    k = vois["kidney"]
    assert k["n_voxels"] == own.size == 288 - 27
    assert k["volume_ml"] == pytest.approx(own.size * 4.8**3 / 1000)
    for key, want in (("mean_gy", own.mean()), ("min_gy", own.min()), ("max_gy", own.max()),
                      ("d2_gy", d_x(own, 2)), ("d50_gy", d_x(own, 50)), ("d90_gy", d_x(own, 90)),
                      ("geud_gy", own.mean())):
        assert k[key] == pytest.approx(float(want), rel=1e-12), key
    assert k["dvh"]["dose_gy"][-1] == pytest.approx(own.max() * 1.0001 + 1e-12)
    # before: mean 127.5 Gy, max 1340 Gy (the lesion's dose); its own voxels receive a few Gy
    assert k["max_gy"] < 30 and k["mean_gy"] < 5
    # the lesion keeps its whole mask, the overlap included
    assert vois["lesion 1"]["n_voxels"] == 64
    assert vois["lesion 1"]["mean_gy"] == pytest.approx(float(dose[LESION].mean()), rel=1e-12)
    assert notes == ["VOI 'kidney': 27 of 288 voxels (2.986 mL) shared with lesion VOIs (lesion 1) excluded "
                     "from every metric (volume, mean, min, max, D2-D90, DVH, gEUD, EUD, TIA, kinetics, BED)"]


def test_the_note_is_the_imaging_note():
    g = Geometry(SHAPE, VOXEL_MM, (0.0, 0.0, 0.0), (1, 0, 0, 0, 1, 0, 0, 0, 1))
    labels = LabelMap.from_full_masks(g, [(VoiSpec(1, "kidney", VoiKind.KIDNEY), KIDNEY),
                                          (VoiSpec(2, "lesion 1", VoiKind.LESION), LESION)])
    img = quantify(Image(_maps(1e6)[0].astype(np.float32), g, Quantity.BQML), labels, require_suv=False)
    imaging = [n for n in img.notes if n.startswith("VOI 'kidney'")]
    _, vois, notes = _run(1e6)
    assert img.by_name()["kidney"].n_voxels == vois["kidney"]["n_voxels"]
    assert [n.split(" excluded from")[0] for n in notes] == [n.split(" excluded from")[0] for n in imaging]


@pytest.mark.parametrize("extreme", [0.0, 1e9, 1e-9, 5e4])
def test_kidney_numbers_unchanged_when_the_lesion_dose_is_extreme(extreme):
    """The dose engine replaced by a fixed map: only the per-VOI statistics are under test."""
    rng = np.random.default_rng(7)
    fixed = rng.gamma(2.0, 1.5, size=SHAPE)

    def stats(dose_map):
        with patch("lutarterial.dosimetry.workflow.dose_from_tia_kernel", lambda *a, **k: dose_map.copy()):
            _, res = voxel_dosimetry(_maps(1e6), TIMES, VOXEL_MM, MASKS, kinds=KINDS)
        return {v["voi"]: v for v in res["vois"]}["kidney"]

    changed = fixed.copy()
    changed[LESION] = extreme
    before, after = stats(fixed), stats(changed)
    own = fixed[KIDNEY & ~LESION]
    assert after["mean_gy"] == before["mean_gy"] == pytest.approx(float(own.mean()), rel=1e-12)
    assert after["max_gy"] == before["max_gy"] == float(own.max())
    for key in ("n_voxels", "min_gy", "d2_gy", "d50_gy", "d70_gy", "d90_gy", "geud_gy", "dvh", "bed_mean_gy",
                "tia_mbq_h", "teff_h"):
        assert after[key] == before[key], key


def test_kidney_kinetics_and_tia_do_not_see_the_lesion_activity():
    """The kidney TAC is fitted on the kidney minus the lesion: its Teff, TIA and BED ignore the lesion."""
    _, low, _ = _run(1e6)
    _, high, _ = _run(1e9)
    for key in ("tia_mbq_h", "teff_h", "model"):
        assert low["kidney"][key] == high["kidney"][key], key
    assert low["kidney"]["teff_h"] == pytest.approx(40.0, rel=1e-3)  # the kidney's own, not mixed with 120 h
    tia_vox = 1e5 * 4.8**3 * 1e-3 * 1e-6 * 40 / LN2  # MBq*h per kidney voxel: mono-exponential, Teff 40 h
    assert low["kidney"]["tia_mbq_h"] == pytest.approx(261 * tia_vox, rel=1e-3)


def test_a_kidney_inside_a_lesion_is_an_error_naming_both():
    with pytest.raises(InvalidInputError, match=r"'kidney' lies entirely inside lesion VOIs \(lesion 1\)"):
        _run(1e6, masks={"kidney": LESION & KIDNEY, "lesion 1": LESION})


@pytest.mark.parametrize("kinds", [None, {"kidney": "organ", "lesion 1": "lesion"}, {"kidney": "liver",
                                                                                   "lesion 1": "lesion"}])
def test_without_organ_kinds_masks_stay_whole(kinds):
    """Only kinds that the imaging rule calls background lose voxels: no kinds, "organ" or a drawn liver."""
    dose, vois, notes = _run(1e6, kinds=kinds)
    assert vois["kidney"]["n_voxels"] == 288 and notes == []
    assert vois["kidney"]["mean_gy"] == pytest.approx(float(dose[KIDNEY].mean()), rel=1e-12)


def test_extrahepatic_vois_are_excluded_too_and_marrow_spleen_are_organs_at_risk():
    masks = {"marrow": KIDNEY, "spleen": _box((0, 10, 10), (3, 3, 3)), "node": LESION}
    dose, vois, notes = _run(1e6, masks=masks, kinds={"marrow": "marrow", "spleen": "spleen",
                                                      "node": "extrahepatic"})
    assert vois["marrow"]["n_voxels"] == 261 and vois["spleen"]["n_voxels"] == 27
    assert vois["node"]["n_voxels"] == 64
    assert len(notes) == 1 and "'marrow': 27 of 288 voxels" in notes[0] and "(node)" in notes[0]

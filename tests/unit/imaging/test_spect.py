"""SPECT calibration registry (selection by date, clear errors), recovery coefficients, decay."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import numpy as np
import pytest

from lutarterial.errors import InvalidInputError, NotFoundError
from lutarterial.imaging.spect import (
    Calibration,
    CalibrationRegistry,
    RecoveryTable,
    calibrate_spect,
    decay_correct,
)
from lutarterial.imaging.types import Geometry, Image, Quantity

CSV = """# comment line
site,camera,collimator,nuclide,valid_from,valid_to,cps_per_mbq,time_basis,source
A,Cam 1,MEGP,Lu-177,2025-01-01,2025-06-30,10.0,total,s1
A,Cam 1,MEGP,Lu-177,2025-07-01,,11.0,total,s2
A,Cam 1,MEGP,Lu-177,2026-01-01,,12.0,per_projection,s3
"""


@pytest.mark.parametrize(("day", "cps"), [(date(2025, 1, 1), 10.0), (date(2025, 6, 30), 10.0),
                                          (date(2025, 7, 1), 11.0), (date(2025, 12, 31), 11.0),
                                          (date(2026, 1, 1), 12.0), (date(2030, 1, 1), 12.0)])
def test_selection_by_date_boundaries(day, cps):
    reg = CalibrationRegistry.from_text(CSV)
    assert reg.select("a", "CAM 1", "megp", "Lu177", day).cps_per_mbq == cps


def test_no_calibration_before_first_valid_date():
    reg = CalibrationRegistry.from_text(CSV)
    with pytest.raises(NotFoundError, match="valid on 2024-12-31"):
        reg.select("A", "Cam 1", "MEGP", "Lu-177", date(2024, 12, 31))


def test_unknown_camera_lists_what_exists():
    reg = CalibrationRegistry.from_text(CSV)
    with pytest.raises(NotFoundError, match="A/Cam 1/MEGP/Lu-177"):
        reg.select("A", "Cam 2", "MEGP", "Lu-177", date(2025, 3, 1))


def test_bad_rows_are_rejected():
    with pytest.raises(InvalidInputError, match="row 2"):
        CalibrationRegistry.from_text("site,camera,collimator,nuclide,valid_from,valid_to,cps_per_mbq,time_basis\n"
                                      "A,B,C,D,notadate,,1,total\n")
    with pytest.raises(InvalidInputError, match="positive"):
        Calibration("A", "B", "C", "D", date(2025, 1, 1), None, 0.0, "total")


def test_packaged_registry_has_the_synthetic_camera():
    reg = CalibrationRegistry.packaged()
    assert reg.select("SYNTH", "Synthetic SPECT", "MEGP", "Lu-177", date(2026, 3, 1)).cps_per_mbq == 9.5
    assert reg.select("SYNTH", "Synthetic SPECT", "MEGP", "Lu-177", date(2026, 1, 31)).cps_per_mbq == 9.1


def test_recovery_interpolation_and_clamping():
    rt = RecoveryTable("c", "m", "n", (1.0, 10.0, 100.0), (0.3, 0.6, 0.9))
    assert rt(1.0) == pytest.approx(0.3)
    assert rt(np.sqrt(10.0)) == pytest.approx(0.45)  # midway in log(volume)
    assert rt(0.1) == pytest.approx(0.3)  # clamped below
    assert rt(1e4) == pytest.approx(0.9)  # clamped above
    with pytest.raises(InvalidInputError):
        RecoveryTable("c", "m", "n", (10.0, 1.0), (0.3, 0.6))
    with pytest.raises(NotFoundError, match="no recovery"):
        RecoveryTable.packaged("Other", "MEGP", "Lu-177")


def _counts_image(counts_per_voxel: float, meta: dict) -> Image:
    g = Geometry((2, 3, 4), (4.0, 4.0, 4.0), (0, 0, 0), (1, 0, 0, 0, 1, 0, 0, 0, 1))
    return Image(np.full(g.shape, counts_per_voxel, np.float32), g, Quantity.CNTS, "NM",
                 acquisition_time=datetime(2026, 1, 2, 10), meta=meta)


def test_counts_to_bqml_total_and_per_projection():
    # 1 MBq/mL in a 0.064 mL voxel = 64 kBq; S = 10 cps/MBq; T = 120 x 20 s = 2400 s
    counts = 0.064 * 10.0 * 2400
    img = _counts_image(counts, {"frame_duration_s": 20.0, "projections": 120})
    cal = Calibration("A", "B", "C", "Lu-177", date(2025, 1, 1), None, 10.0, "total")
    out = calibrate_spect(img, cal)
    assert out.quantity is Quantity.BQML
    np.testing.assert_allclose(out.array, 1e6, rtol=1e-6)
    cal_pp = Calibration("A", "B", "C", "Lu-177", date(2025, 1, 1), None, 10.0 * 120, "per_projection")
    np.testing.assert_allclose(calibrate_spect(img, cal_pp).array, 1e6, rtol=1e-6)


def test_missing_duration_is_a_clear_error():
    img = _counts_image(1.0, {})
    cal = Calibration("A", "B", "C", "Lu-177", date(2025, 1, 1), None, 10.0, "total")
    with pytest.raises(InvalidInputError, match="ActualFrameDuration"):
        calibrate_spect(img, cal)


def test_decay_to_reference_time():
    g = Geometry((1, 1, 1), (1.0, 1.0, 1.0), (0, 0, 0), (1, 0, 0, 0, 1, 0, 0, 0, 1))
    t = datetime(2026, 1, 2, 10)
    img = Image(np.full((1, 1, 1), 100.0, np.float32), g, Quantity.BQML, "NM", acquisition_time=t)
    out = decay_correct(img, t - timedelta(seconds=574300.8), 574300.8)  # one half-life earlier
    assert float(out.array[0, 0, 0]) == pytest.approx(200.0, rel=1e-6)

"""SUV timing checked against a vendor's own SUV factor.

Header values of the QIBA SUV test series "PHILIPS_CNTS_AND_BQML_SUV" (as listed in the
cornerstonejs/calculate-suv test metadata, test/metadata/PHILIPS_CNTS_AND_BQML_SUV-instances.json):
SeriesTime 09:35:56, AcquisitionTime 09:54:39, injection 08:30:00, 238 MBq, T1/2 6588 s, 54 kg,
Units CNTS, Philips (7053,1009) activity-concentration scale 1.602563 and (7053,1000) SUV scale
0.000551. The scanner's SUV factor is given to 3 significant figures (+-0.1 %); our SUVbw from
Bq/mL and the header timing must reproduce it to 0.2 %. Using the acquisition time instead of the
series time (the QIBA rule for Philips) would be 12 % off; so the test separates the two rules.
"""

from __future__ import annotations

import numpy as np
import pytest

from lutarterial.imaging import dicom_write as dw
from lutarterial.imaging.io import read_image, with_overrides
from lutarterial.imaging.metrics import image_suv_factors
from lutarterial.imaging.types import Geometry, Quantity

G = Geometry((3, 4, 4), (4.0, 4.0, 4.0), (0.0, 0.0, 0.0), (1, 0, 0, 0, 1, 0, 0, 0, 1))


def test_philips_suv_scale_factor_reproduced_from_header_timing(tmp_path):
    from datetime import datetime

    inj = datetime(2020, 12, 17, 8, 30, 0)
    series = datetime(2020, 12, 17, 9, 35, 56)
    p = dw.PatientInfo("P", "1.2.3", "1.2.3.4", inj, weight_kg=54.0, height_m=None, sex="F")
    counts = np.full(G.shape, 1000.0, np.float32)
    dss = dw.pet_datasets(counts, G, p, series_time=series, injection_time=inj, injected_bq=238e6, half_life_s=6588)
    for ds in dss:
        ds.Units = "CNTS"
        ds.AcquisitionTime = "095439"
        ds.FrameReferenceTime = 1183000
        ds.ActualFrameDuration = 120000
        ds.CorrectedImage = ["DECY", "RADL", "ATTN", "SCAT", "DTIM", "RAN", "NORM"]
        ri = ds.RadiopharmaceuticalInformationSequence[0]
        del ri.RadiopharmaceuticalStartDateTime
        ri.RadiopharmaceuticalStartTime = "083000"
        blk = ds.private_block(0x7053, "Philips PET Private Group", create=True)
        blk.add_new(0x00, "DS", "0.000551")
        blk.add_new(0x09, "DS", "1.602563")
    img = read_image(dw.save_series(dss, tmp_path / "pet"))
    assert img.quantity is Quantity.BQML
    np.testing.assert_allclose(img.array, 1000.0 * 1.602563, rtol=1e-4)
    vendor_suv_per_count = image_suv_factors(img).bw * 1.602563
    assert vendor_suv_per_count == pytest.approx(0.000551, rel=1e-6)
    ours = with_overrides(img, weight_kg=54.0)  # any override: header-based factor, not the vendor's
    ours_suv_per_count = image_suv_factors(ours).bw * 1.602563
    assert ours_suv_per_count == pytest.approx(0.000551, rel=2e-3)

"""NIfTI PET with a BIDS-style JSON sidecar; comparison edge cases."""

from __future__ import annotations

import json
from datetime import datetime

import numpy as np
import pytest

from lutarterial.errors import InvalidInputError
from lutarterial.imaging.compare import compare_studies, lobar_comparison
from lutarterial.imaging.dicom_write import write_nifti_labels
from lutarterial.imaging.io import read_image, read_labels
from lutarterial.imaging.metrics import StudyMetrics, VoiMetrics, quantify
from lutarterial.imaging.resample import to_sitk
from lutarterial.imaging.types import Geometry, Quantity, VoiKind

G = Geometry((10, 12, 14), (3.0, 3.0, 3.0), (-20.0, -18.0, 0.0), (1, 0, 0, 0, 1, 0, 0, 0, 1))


def write_nifti_pet(tmp_path, value_kbqml=10.0, sidecar=None):
    import SimpleITK as sitk

    arr = np.full(G.shape, value_kbqml, np.float32)
    p = tmp_path / "pet.nii.gz"
    sitk.WriteImage(to_sitk(arr, G), str(p))
    side = {"Modality": "PT", "Units": "kBq/mL", "InjectedRadioactivity": 150, "InjectedRadioactivityUnits": "MBq",
            "BodyWeight": 75, "TracerRadionuclide": "Ga68", "ScanDate": "2026-03-02", "TimeZero": "09:00:00",
            "InjectionStart": 0, "ScanStart": 3600, "ImageDecayCorrected": True, "ImageDecayCorrectionTime": 3600}
    side.update(sidecar or {})
    (tmp_path / "pet.json").write_text(json.dumps(side))
    return p


def test_nifti_pet_with_bids_sidecar(tmp_path):
    img = read_image(write_nifti_pet(tmp_path))
    assert img.quantity is Quantity.BQML
    assert img.timing.injection_time == datetime(2026, 3, 2, 9) and img.timing.scan_time == datetime(2026, 3, 2, 10)
    lab = np.zeros(G.shape, np.int16)
    lab[2:8, 3:9, 4:10] = 1
    write_nifti_labels(tmp_path / "lab.nii.gz", lab, G)
    m = quantify(img, read_labels(tmp_path / "lab.nii.gz", img, names={"1": {"name": "spleen", "kind": "spleen"}}))
    expected = 10000 * 75000 / (150e6 * 2 ** (-3600 / 4062.6))  # 68Ga half-life from the nuclide name
    assert m.vois[0].suv_mean == pytest.approx(expected, rel=1e-5)


def test_nifti_pet_sidecar_without_weight_names_the_tag(tmp_path):
    from lutarterial.errors import DicomConformanceError

    img = read_image(write_nifti_pet(tmp_path, sidecar={"BodyWeight": None}))
    lab = np.ones(G.shape, np.int16)
    write_nifti_labels(tmp_path / "lab.nii.gz", lab, G)
    with pytest.raises(DicomConformanceError, match="weight"):
        quantify(img, read_labels(tmp_path / "lab.nii.gz", img))


def vm(name, kind, mean, lobe=None, n=10, derived=False):
    return VoiMetrics(name=name, kind=kind, lobe=lobe, derived=derived, n_voxels=n, volume_ml=n * 0.1,
                      mean_bqml=mean * 1000, max_bqml=mean * 1000, peak_bqml=mean * 1000, sd_bqml=0.0,
                      total_bq=mean * 100 * n, percent_ia=mean / 10, suv_mean=mean, suv_max=mean, suv_peak=mean)


def study(vois):
    return StudyMetrics(tuple(vois), Quantity.BQML, None, 1e8, None)


def test_kind_mismatch_and_no_match_are_errors():
    a = study([vm("L1", VoiKind.LESION, 10)])
    with pytest.raises(InvalidInputError, match="lesion in the IV study but a liver"):
        compare_studies(a, study([vm("l1", VoiKind.LIVER, 10)]))
    with pytest.raises(InvalidInputError, match="no VOI names match"):
        compare_studies(a, study([vm("L2", VoiKind.LESION, 10)]))


def test_names_match_case_and_space_insensitively():
    c = compare_studies(study([vm("Lesion  1", VoiKind.LESION, 10)]), study([vm("lesion 1", VoiKind.LESION, 25)]))
    assert c.vois[0].ratio["suv_mean"] == pytest.approx(2.5)
    assert c.unmatched_iv == () and c.unmatched_iah == ()


def test_lobar_comparison_requires_lobe_liver_vois():
    s = study([vm("L1", VoiKind.LESION, 10, lobe="right"), vm("L2", VoiKind.LESION, 30, lobe="left"),
               vm("healthy liver (right)", VoiKind.LIVER, 5, lobe="right", derived=True),
               vm("healthy liver (left)", VoiKind.LIVER, 5, lobe="left", derived=True)])
    r = lobar_comparison(s, "left", "right")
    assert (r.tnr_ia, r.tnr_control, r.ratio) == pytest.approx((6.0, 2.0, 3.0))
    with pytest.raises(InvalidInputError, match="lobe 'middle'"):
        lobar_comparison(s, "middle", "right")
    bad = study([vm("L1", VoiKind.LESION, 10, lobe="right")])
    with pytest.raises(InvalidInputError, match="no liver VOI carries that lobe"):
        lobar_comparison(bad, "right", "left")


def test_quantify_refuses_empty_voi_other_grid_and_other_frame_of_reference(tmp_path):
    from lutarterial.imaging.types import Image, LabelMap, VoiSpec, crop_mask

    img = Image(np.ones(G.shape, np.float32), G, Quantity.BQML, "NM", frame_of_reference_uid="1.1")
    empty = LabelMap(G, (crop_mask(VoiSpec(1, "gone", VoiKind.LESION), np.zeros(G.shape, bool)),))
    with pytest.raises(InvalidInputError, match="'gone' is empty"):
        quantify(img, empty, require_suv=False)
    other = Geometry(G.shape, G.spacing_mm, (0.0, 0.0, 0.0), G.direction)
    m = np.ones(G.shape, bool)
    with pytest.raises(InvalidInputError, match="not on the image grid"):
        quantify(img, LabelMap.from_full_masks(other, [(VoiSpec(1, "a", VoiKind.OTHER), m)]), require_suv=False)
    with pytest.raises(InvalidInputError, match="frames of reference"):
        quantify(img, LabelMap.from_full_masks(G, [(VoiSpec(1, "a", VoiKind.OTHER), m)], "2.2"), require_suv=False)


def test_noisy_synthetic_mean_is_unbiased(tmp_path):
    from lutarterial.imaging.synthetic import write_synthetic_patient

    t = write_synthetic_patient(tmp_path, seed=2, shape=(24, 40, 40), voxel_mm=(9.0, 9.0, 9.0), n_lesions=1,
                                noise=0.1, spect_times_h=(), ct_upsample=1)
    img = read_image(t.iv.pet_dir)
    m = quantify(img, read_labels(t.iv.seg_path, img, names=t.names_path)).by_name()
    # liver: ~1,000 voxels with 10 % noise -> SE of the mean ~0.3 %; allow 2 %
    assert m["healthy liver"].suv_mean == pytest.approx(t.iv.suv_mean["healthy liver"], rel=0.02)
    assert m["spleen"].suv_max > t.iv.suv_mean["spleen"]  # noise raises the max (known bias of SUVmax)

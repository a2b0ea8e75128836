"""Issue 9 regressions, imaging: no SUV from NaN voxels, a zero RescaleSlope, an infinite dose,
and no traceback for slices without PixelData or an empty/corrupt VOI file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest

from lutarterial.cli.main import run
from lutarterial.imaging.synthetic import write_synthetic_patient


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    return write_synthetic_patient(tmp_path_factory.mktemp("reg"), seed=11, shape=(20, 32, 32),
                                   voxel_mm=(8.0, 8.0, 8.0), n_lesions=2, spect_times_h=(24.0,), ct_upsample=1)


def cli(capsys, *args):
    try:
        run([str(a) for a in args])
        code = 0
    except SystemExit as exc:
        code = exc.code or 0
    out = capsys.readouterr()
    return code, out.out, out.err


def _nifti_pet(tmp: Path, labels_path: Path, *, bad_value: float, n_bad: int, label: int) -> Path:
    """A Bq/mL NIfTI on the SPECT label grid, uniform 1000 Bq/mL, ``n_bad`` voxels of ``label`` set to ``bad_value``."""
    import nibabel as nib

    lab = nib.load(str(labels_path))
    lab_arr = np.asanyarray(lab.dataobj)
    arr = np.full(lab_arr.shape, 1000.0, dtype=np.float32)
    idx = np.argwhere(lab_arr == label)[:n_bad]
    for a, b, c in idx:
        arr[a, b, c] = bad_value
    path = tmp / "pet.nii.gz"
    # nibabel, not SimpleITK: SimpleITK writes/reads NaN as 0 (the very bug this guards against)
    out = nib.Nifti1Image(arr, lab.affine)
    out.set_data_dtype(np.float32)
    nib.save(out, str(path))
    (tmp / "pet.json").write_text(json.dumps({
        "Modality": "PT", "Units": "Bq/mL", "InjectedRadioactivity": 200, "InjectedRadioactivityUnits": "MBq",
        "InjectionDateTime": "2026-03-02T09:00:00", "ScanDateTime": "2026-03-02T10:00:00",
        "DecayCorrection": "START", "TracerRadionuclide": "Ga68", "BodyWeight": 70}))
    return path


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nonfinite_voxels_in_a_voi_are_an_error_naming_voi_and_count(synth, tmp_path, capsys, bad):
    labels = Path(synth.spect_labels_path)
    names = labels.parent / "names.json"
    pet = _nifti_pet(tmp_path, labels, bad_value=bad, n_bad=3, label=4)  # spleen
    code, out, err = cli(capsys, "quantify", pet, "--voi", labels, "--names", names, "--json", "--no-peak")
    assert code == 2 and out == "", out
    assert "spleen" in err and "3 of" in err and "not finite" in err and "Traceback" not in err
    # excluded with a note when asked
    code, out, err = cli(capsys, "quantify", pet, "--voi", labels, "--names", names, "--json", "--no-peak",
                         "--allow-nonfinite")
    assert code == 0, err
    doc = json.loads(out)
    spleen = next(v for v in doc["vois"] if v["name"] == "spleen")
    assert spleen["mean_bqml"] == pytest.approx(1000.0, rel=1e-6)
    assert any("spleen" in n and "excluded" in n for n in doc.get("notes", [])), doc.get("notes")


def test_nan_near_a_voi_breaks_no_peak_silently(synth, tmp_path, capsys):
    labels = Path(synth.spect_labels_path)
    names = labels.parent / "names.json"
    pet = _nifti_pet(tmp_path, labels, bad_value=np.nan, n_bad=1, label=4)
    code, out, err = cli(capsys, "quantify", pet, "--voi", labels, "--names", names, "--json")
    assert code == 2 and "spleen" in err and "Traceback" not in err


def _copy_series(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


@pytest.mark.parametrize("slope", ["0", "NaN", "inf"])
def test_rescale_slope_zero_or_nonfinite_is_an_error(synth, tmp_path, capsys, slope):
    d = _copy_series(Path(synth.iv.pet_dir), tmp_path / "pet")
    for f in sorted(d.iterdir()):
        ds = pydicom.dcmread(f)
        ds.RescaleSlope = slope
        ds.save_as(f)
    code, out, err = cli(capsys, "quantify", d, "--voi", synth.iv.seg_path, "--names", synth.names_path, "--json")
    assert code == 2 and out == ""
    assert "RescaleSlope" in err and "Traceback" not in err


def test_slices_without_pixel_data_are_a_clear_error(synth, tmp_path, capsys):
    d = _copy_series(Path(synth.iv.pet_dir), tmp_path / "pet")
    for f in sorted(d.iterdir()):
        ds = pydicom.dcmread(f)
        del ds.PixelData
        ds.save_as(f)
    code, out, err = cli(capsys, "quantify", d, "--voi", synth.iv.seg_path, "--names", synth.names_path)
    assert code == 2 and "PixelData" in err and "Traceback" not in err and "internal error" not in err


@pytest.mark.parametrize("content", [b"", b"\x1f\x8b\x08\x00garbage", bytes(range(256)) * 3])
def test_empty_or_corrupt_voi_nifti_is_a_clear_error(synth, tmp_path, capsys, content):
    voi = tmp_path / "voi.nii.gz"
    voi.write_bytes(content)
    code, out, err = cli(capsys, "quantify", synth.iv.pet_dir, "--voi", voi)
    assert code == 2 and "voi.nii.gz" in err and "Traceback" not in err and "internal error" not in err


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "-1", "0", "1e300"])
def test_injected_mbq_nonsense_is_refused(synth, capsys, value):
    code, out, err = cli(capsys, "quantify", synth.iv.pet_dir, "--voi", synth.iv.seg_path, f"--injected-mbq={value}")
    assert code == 2 and out == "" and "--injected-mbq" in err


def test_infinite_header_dose_gives_no_suv(synth, tmp_path, capsys):
    d = _copy_series(Path(synth.iv.pet_dir), tmp_path / "pet")
    for f in sorted(d.iterdir()):
        ds = pydicom.dcmread(f)
        ds.RadiopharmaceuticalInformationSequence[0].RadionuclideTotalDose = "1e300"
        ds.save_as(f)
    code, out, err = cli(capsys, "quantify", d, "--voi", synth.iv.seg_path, "--names", synth.names_path, "--json")
    assert code == 2 and out == "" and "Traceback" not in err and "internal error" not in err
    assert "activity" in err

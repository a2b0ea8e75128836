"""Voxel dosimetry uses the same kernel selection as ``lutarterial kernel`` and records it."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from lutarterial.cli.main import run as _run
from lutarterial.dosimetry.kernels import COMPUTED_SOURCE, dose_voxel_kernel
from lutarterial.dosimetry.voxel import dose_from_tia_kernel
from lutarterial.dosimetry.workflow import voxel_dosimetry

LN2 = math.log(2)


def run(args):
    try:
        _run(args)
    except SystemExit as exc:
        assert exc.code in (0, None), f"exit code {exc.code}"


def test_point_source_dose_uses_published_kernel_at_4p42mm():
    tia = np.zeros((15, 15, 15))
    tia[7, 7, 7] = 1.0 / 3600  # 1 MBq*s
    d = dose_from_tia_kernel(tia, 4.42) * 1e3  # mGy
    # Lanconelli 2012, 177Lu soft tissue 4.42 mm: self 0.226, face 3.39e-3 mGy/(MBq s)
    assert d[7, 7, 7] == pytest.approx(0.226, rel=1e-9)
    assert d[8, 7, 7] == pytest.approx(3.39e-3, rel=1e-6)
    dc = dose_from_tia_kernel(tia, 4.42, kernel_source="computed") * 1e3
    assert dc[7, 7, 7] / d[7, 7, 7] == pytest.approx(1.08, abs=0.02)  # IC/Auger absorbed locally


def _maps(shape, lab, teff=60.0, times=(24.0, 72.0, 144.0)):
    return [np.where(lab == 1, 1e5 * math.exp(-LN2 / teff * t), 0.0) for t in times], list(times)


@pytest.mark.parametrize(("voxel", "source_id"), [(4.42, "lanconelli2012"), (4.1, "computed")])
def test_voxel_dosimetry_records_kernel_source(voxel, source_id):
    shape = (16, 16, 16)
    lab = np.zeros(shape, np.int16)
    lab[5:11, 5:11, 5:11] = 1
    maps, t = _maps(shape, lab)
    _, res = voxel_dosimetry(maps, t, (voxel,) * 3, {"liver": lab == 1})
    k = res["kernel"]
    assert k["source_id"] == source_id
    if source_id == "computed":
        assert k["source"] == COMPUTED_SOURCE and k["citation"] is None
    else:
        assert k["table_voxel_mm"] == 4.42 and "Lanconelli" in k["citation"]


def test_voxel_dosimetry_lanconelli_demanded_at_untabulated_size_errors():
    from lutarterial.errors import InvalidInputError

    lab = np.zeros((8, 8, 8), np.int16)
    lab[2:6, 2:6, 2:6] = 1
    maps, t = _maps((8, 8, 8), lab)
    with pytest.raises(InvalidInputError, match="tabulated cubic sizes"):
        voxel_dosimetry(maps, t, (4.1,) * 3, {"liver": lab == 1}, kernel_source="lanconelli2012")


def _write_nifti(path, arr_kji, spacing):
    import nibabel as nib

    aff = np.diag([-spacing[0], -spacing[1], spacing[2], 1.0])
    nib.save(nib.Nifti1Image(np.transpose(arr_kji, (2, 1, 0)).astype(np.float32), aff), str(path))


@pytest.mark.parametrize("kernel_source", ["auto", "computed"])
def test_cli_image_mode_writes_kernel_source_to_json_and_rtdose(tmp_path, capsys, kernel_source):
    import pydicom

    shape, sp = (16, 16, 16), (4.42, 4.42, 4.42)
    lab = np.zeros(shape, np.int16)
    lab[5:11, 5:11, 5:11] = 1
    args = []
    maps, times = _maps(shape, lab)
    for m, t in zip(maps, times, strict=True):
        p = tmp_path / f"a{int(t)}.nii.gz"
        _write_nifti(p, m, sp)
        args += ["--activity", str(p), "--time-h", str(t)]
    lp = tmp_path / "labels.nii.gz"
    _write_nifti(lp, lab.astype(np.float32), sp)
    out = tmp_path / "out"
    run(["dose", *args, "--labels", str(lp), "--out-dir", str(out), "--kernel-source", kernel_source, "--json"])
    res = json.loads(capsys.readouterr().out)
    saved = json.loads((out / "dose.json").read_text())
    ds = pydicom.dcmread(out / "rtdose.dcm")
    if kernel_source == "auto":
        assert res["kernel"]["source_id"] == saved["kernel"]["source_id"] == "lanconelli2012"
        assert ds.DoseComment == "kernel Lanconelli 2012 4.42 mm"
        assert "Lanconelli" in ds.ImageComments and "517-533" in ds.ImageComments
    else:
        assert res["kernel"]["source"] == COMPUTED_SOURCE
        assert ds.DoseComment == "kernel computed (first principles)"
        assert "first principles" in ds.ImageComments


def test_kernel_cache_distinguishes_sources():
    # same nuclide and voxel size, two sources: the FFT cache must not mix their transforms
    tia = np.zeros((9, 9, 9))
    tia[4, 4, 4] = 1.0
    a = dose_from_tia_kernel(tia, 4.42, kernel=dose_voxel_kernel("Lu-177", 4.42))
    b = dose_from_tia_kernel(tia, 4.42, kernel=dose_voxel_kernel("Lu-177", 4.42, source="computed"))
    assert b[4, 4, 4] > a[4, 4, 4]

"""TAC CSV reading, dose-map writers (NIfTI, RT Dose) and the CLI end to end."""

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lutarterial.cli.main import run as _cli_run
from lutarterial.dosimetry.io import read_tac_csv, write_nifti_dose, write_rtdose
from lutarterial.errors import InvalidInputError

ROOT = Path(__file__).resolve().parents[3]
LN2 = math.log(2)


def run(argv):
    """Call the CLI in-process; Typer ends with SystemExit(0) on success."""
    try:
        _cli_run(argv)
    except SystemExit as exc:
        assert exc.code in (0, None), f"exit code {exc.code}"


def _csv(tmp_path, text, name="tac.csv"):
    p = tmp_path / name
    p.write_text(text)
    return p


GOOD = """voi,time_h,activity_mbq,mass_g
kidney_left,4,60,150
kidney_left,24,45,150
kidney_left,72,28,150
kidney_left,168,10,150
"""


def test_read_tac_csv(tmp_path):
    v = read_tac_csv(_csv(tmp_path, GOOD))
    assert len(v) == 1 and v[0].voi == "kidney_left" and v[0].time_h == (4, 24, 72, 168) and v[0].kind == "organ"


@pytest.mark.parametrize(
    "row,msg",
    [
        ("kidney_left,200,-1,150", "negative activity"),
        ("kidney_left,24,3,150", "duplicate time"),
        ("kidney_left,200,3,", "missing mass_g"),
        ("kidney_left,200,3,140", "different masses"),
        ("kidney_left,-5,3,150", "time_h"),
        ("kidney_left,abc,3,150", "not a number"),
    ],
)
def test_read_tac_csv_errors(tmp_path, row, msg):
    with pytest.raises(InvalidInputError, match=msg):
        read_tac_csv(_csv(tmp_path, GOOD + row + "\n"))


def test_missing_column(tmp_path):
    with pytest.raises(InvalidInputError, match="mass_g"):
        read_tac_csv(_csv(tmp_path, "voi,time_h,activity_mbq\nk,1,2\n"))


def test_cli_tac_json(tmp_path, capsys):
    run(["dose", "--tac", str(_csv(tmp_path, GOOD)), "--json"])
    out = json.loads(capsys.readouterr().out)
    v = out["vois"][0]
    for key in ("voi", "model", "teff_h", "tia_mbq_h", "tia_sd_mbq_h", "dose_gy", "bed_gy"):
        assert key in v
    assert v["dose_gy"] == pytest.approx(v["tia_mbq_h"] * v["s_value_gy_per_mbq_h"])
    assert {c["quantity"] for c in out["cumulative"]} == {"dose_gy", "bed_gy"}


def test_cli_mono_exponential_truth_through_csv(tmp_path, capsys):
    teff, a0, m = 55.0, 80.0, 160.0
    rows = "".join(f"kidney_right,{t},{a0 * math.exp(-LN2 / teff * t):.10f},{m}\n" for t in (4, 24, 48, 96, 168))
    run(["dose", "--tac", str(_csv(tmp_path, "voi,time_h,activity_mbq,mass_g\n" + rows)), "--json", "--no-photons"])
    v = json.loads(capsys.readouterr().out)["vois"][0]
    assert v["teff_h"] == pytest.approx(teff, rel=0.005)
    assert v["dose_gy"] == pytest.approx(a0 * teff / LN2 * 0.08532 / m, rel=0.005)


def test_cli_stp_hanscheid_and_madsen(tmp_path, capsys):
    p = _csv(tmp_path, "voi,time_h,activity_mbq,mass_g\nkidney_left,72,20,150\nlesion_1,72,5,10\n")
    run(["dose", "--tac", str(p), "--stp", "hanscheid2018", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert out["vois"][0]["tia_mbq_h"] == pytest.approx(20 * 2 * 72 / LN2)
    assert out["vois"][1]["kind"] == "lesion"
    run(["dose", "--tac", str(p), "--stp", "madsen2018", "--teff-h", "50", "--json"])
    out = json.loads(capsys.readouterr().out)
    lam = LN2 / 50
    assert out["vois"][0]["tia_mbq_h"] == pytest.approx(20 * math.exp(lam * 72) / lam)


def test_cli_errors_exit_2(tmp_path):
    p = _csv(tmp_path, "voi,time_h,activity_mbq,mass_g\nkidney_left,72,20,150\n")
    env = {"PYTHONPATH": str(ROOT / "src")}
    r = subprocess.run([sys.executable, "-m", "lutarterial", "dose", "--tac", str(p), "--stp", "madsen2018"],
                       capture_output=True, text=True, env=env, cwd=ROOT)
    assert r.returncode == 2 and "teff" in r.stderr.lower() and "Traceback" not in r.stderr
    r = subprocess.run([sys.executable, "-m", "lutarterial", "dose", "--tac", str(p)],
                       capture_output=True, text=True, env=env, cwd=ROOT)
    assert r.returncode == 2 and "--stp" in r.stderr


def test_cli_cycles_cumulative(tmp_path, capsys):
    rows = ["voi,time_h,activity_mbq,mass_g,cycle"]
    for cyc in ("IV1", "IV2", "IV3", "IV4", "IAH"):
        rows += [f"kidney_left,{t},{100 * math.exp(-LN2 / 50 * t):.6f},150,{cyc}" for t in (4, 24, 72, 168)]
    run(["dose", "--tac", str(_csv(tmp_path, "\n".join(rows) + "\n")), "--json", "--kidney-limit-gy", "5"])
    out = json.loads(capsys.readouterr().out)
    assert len(out["vois"]) == 5
    dose = [c for c in out["cumulative"] if c["quantity"] == "dose_gy"][0]
    assert dose["total"] == pytest.approx(sum(v["dose_gy"] for v in out["vois"]))
    assert dose["status"] == ("exceeded" if dose["total"] > 5 else "below")
    assert dose["cycles"] == sorted(["IV1", "IV2", "IV3", "IV4", "IAH"])


def test_cli_kernel_json(capsys):
    run(["kernel", "--nuclide", "Lu-177", "--voxel-mm", "4.42", "--json", "--radius-vox", "3"])
    out = json.loads(capsys.readouterr().out)
    assert out["voxel_mm"] == 4.42 and out["unit"] == "mGy/(MBq*s)"
    assert all(i >= j >= k >= 0 for i, j, k, _ in out["s_values"])
    assert len(out["s_values"]) == 20  # offsets with 3 >= i >= j >= k >= 0
    assert out["s_values"][0][:3] == [0, 0, 0]
    assert out["include_ic_auger"] is True and out["nuclide"] == "Lu-177"


@pytest.mark.parametrize("alias", ["Lu177", "177Lu", "lu-177"])
def test_cli_kernel_nuclide_aliases_and_beta_only_mode(alias, capsys):
    # Lanconelli et al. 2012 (Phys Med Biol 57:517), 177Lu soft tissue 4.42 mm: self 0.226, face 3.39e-3
    run(["kernel", "--nuclide", alias, "--voxel-mm", "4.42", "--json", "--radius-vox", "1", "--no-ic-auger"])
    out = json.loads(capsys.readouterr().out)
    assert out["nuclide"] == "Lu-177" and out["include_ic_auger"] is False
    s = {tuple(r[:3]): r[3] for r in out["s_values"]}
    assert s[(0, 0, 0)] == pytest.approx(0.226, rel=0.05)
    assert s[(1, 0, 0)] == pytest.approx(3.39e-3, rel=0.05)


def test_cli_kernel_unknown_nuclide_exit_2():
    env = {"PYTHONPATH": str(ROOT / "src")}
    r = subprocess.run([sys.executable, "-m", "lutarterial", "kernel", "--nuclide", "Lu-177m", "--voxel-mm", "4"],
                       capture_output=True, text=True, env=env, cwd=ROOT)
    assert r.returncode == 2 and "unknown nuclide" in r.stderr and "Traceback" not in r.stderr


class _Geom:
    def __init__(self, shape, spacing, origin=(-10.0, -20.0, 5.0)):
        self.shape = shape
        self.spacing_mm = spacing
        self.origin_mm = origin
        self.direction = (1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0)


def test_rtdose_roundtrip(tmp_path):
    import pydicom

    g = _Geom((4, 5, 6), (2.0, 3.0, 4.0))
    dose = np.random.default_rng(0).random(g.shape) * 12
    from datetime import datetime

    p = write_rtdose(tmp_path / "rd.dcm", dose, g, content_datetime=datetime(2026, 1, 2, 3, 4, 5),
                     frame_of_reference_uid="1.2.3.4")
    ds = pydicom.dcmread(p)
    assert ds.Modality == "RTDOSE" and ds.DoseUnits == "GY" and ds.DoseType == "PHYSICAL"
    assert ds.FrameOfReferenceUID == "1.2.3.4"
    arr = ds.pixel_array * float(ds.DoseGridScaling)
    assert arr.shape == g.shape
    assert np.allclose(arr, dose, atol=12 / 2**31)
    assert list(map(float, ds.GridFrameOffsetVector)) == [0.0, 4.0, 8.0, 12.0]
    assert [float(x) for x in ds.PixelSpacing] == [3.0, 2.0]


def test_nifti_roundtrip(tmp_path):
    import nibabel as nib

    g = _Geom((4, 5, 6), (2.0, 3.0, 4.0))
    dose = np.arange(120, dtype=float).reshape(g.shape)
    p = write_nifti_dose(tmp_path / "d.nii.gz", dose, g)
    img = nib.load(str(p))
    assert np.allclose(np.transpose(np.asarray(img.dataobj), (2, 1, 0)), dose)
    assert np.allclose(img.affine[:3, 3], [10.0, 20.0, 5.0])  # LPS -> RAS


def _write_nifti(path, arr_kji, spacing):
    import nibabel as nib

    aff = np.diag([-spacing[0], -spacing[1], spacing[2], 1.0])
    nib.save(nib.Nifti1Image(np.transpose(arr_kji, (2, 1, 0)).astype(np.float32), aff), str(path))


def test_cli_image_mode_end_to_end(tmp_path, capsys):
    shape, sp = (24, 24, 24), (4.0, 4.0, 4.0)
    lab = np.zeros(shape, np.int16)
    lab[8:16, 8:16, 8:16] = 1
    paths = []
    teff = 60.0
    for t in (24.0, 72.0, 144.0):
        act = np.where(lab == 1, 1e5 * math.exp(-LN2 / teff * t), 0.0)  # Bq/mL
        p = tmp_path / f"act_{int(t)}.nii.gz"
        _write_nifti(p, act, sp)
        paths += ["--activity", str(p), "--time-h", str(t)]
    lp = tmp_path / "labels.nii.gz"
    _write_nifti(lp, lab.astype(np.float32), sp)
    names = tmp_path / "names.json"
    names.write_text(json.dumps({"1": {"name": "lesion_1", "kind": "lesion"}}))
    out_dir = tmp_path / "out"
    run(["dose", *paths, "--labels", str(lp), "--names", str(names), "--out-dir", str(out_dir), "--json"])
    res = json.loads(capsys.readouterr().out)
    v = res["vois"][0]
    assert v["voi"] == "lesion_1" and v["n_voxels"] == 512
    assert v["teff_h"] == pytest.approx(teff, rel=0.005) and v["bed_mean_gy"] > v["mean_gy"]
    assert v["max_gy"] >= v["d2_gy"] >= v["d50_gy"] >= v["d70_gy"] >= v["d90_gy"] >= v["min_gy"]
    # mean dose close to the sphere-free estimate: TIA x 0.0853 / mass (electrons mostly absorbed)
    mass_g = 512 * 0.064 * 1.04
    assert v["mean_gy"] == pytest.approx(v["tia_mbq_h"] * 0.0853 / mass_g, rel=0.1)
    for f in ("dose.nii.gz", "rtdose.dcm", "dvh.png", "dose.csv", "dose.json"):
        assert (out_dir / f).is_file()


def test_cli_prior_doses_added_to_cumulative(tmp_path, capsys):
    prior = _csv(tmp_path, "voi,cycle,dose_gy,teff_h\n" + "".join(
        f"kidney_left,IV{i},4.5,50\n" for i in range(1, 5)), name="prior.csv")
    run(["dose", "--tac", str(_csv(tmp_path, GOOD)), "--cycle", "IAH", "--prior-doses", str(prior), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert out["vois"][0]["cycle"] == "IAH"
    dose = [c for c in out["cumulative"] if c["quantity"] == "dose_gy"][0]
    assert dose["total"] == pytest.approx(18.0 + out["vois"][0]["dose_gy"])
    assert dose["cycles"] == ["IAH", "IV1", "IV2", "IV3", "IV4"]
    bed = [c for c in out["cumulative"] if c["quantity"] == "bed_gy"][0]
    assert bed["status"] in ("below", "exceeded") and bed["total"] > dose["total"]


def test_prior_doses_errors(tmp_path):
    from lutarterial.dosimetry.io import read_prior_doses_csv

    with pytest.raises(InvalidInputError, match="negative dose"):
        read_prior_doses_csv(_csv(tmp_path, "voi,cycle,dose_gy\nk,IV1,-1\n", name="p.csv"))
    with pytest.raises(InvalidInputError, match="twice"):
        read_prior_doses_csv(_csv(tmp_path, "voi,cycle,dose_gy\nk,IV1,1\nk,IV1,2\n", name="p2.csv"))


def test_madsen_per_voi_population_teff_column(tmp_path, capsys):
    p = _csv(tmp_path, "voi,time_h,activity_mbq,mass_g,teff_h\nkidney_left,96,20,150,45\nlesion_1,96,5,10,90\n")
    run(["dose", "--tac", str(p), "--stp", "madsen2018", "--json"])
    out = json.loads(capsys.readouterr().out)
    for v, teff, a in zip(out["vois"], (45.0, 90.0), (20.0, 5.0)):
        lam = LN2 / teff
        assert v["teff_h"] == teff
        assert v["tia_mbq_h"] == pytest.approx(a * math.exp(lam * 96) / lam)


def test_cli_image_mode_registers_time_points_on_ct(tmp_path, capsys):
    shape, sp = (32, 32, 32), (4.0, 4.0, 4.0)
    z, y, x = np.indices(shape)
    body = (x - 16) ** 2 / 12**2 + (y - 16) ** 2 / 10**2 + (z - 16) ** 2 / 13**2 < 1
    bone = ((x - 20) ** 2 + (y - 12) ** 2 < 6) & body
    organ = (x - 11) ** 2 / 9 + (y - 17) ** 2 / 12 + (z - 15) ** 2 / 20 < 1
    ct0 = np.where(body, 40.0, -1000.0)
    ct0[bone] = 900.0
    ct0[organ] = 20.0
    teff, times, shifts = 60.0, (24.0, 72.0, 144.0), ((0, 0, 0), (2, -2, 1), (-1, 2, 2))
    args = []
    for t, sh in zip(times, shifts):
        act = np.where(organ, 2e5 * math.exp(-LN2 / teff * t), 0.0)
        _write_nifti(tmp_path / f"a{int(t)}.nii.gz", np.roll(act, sh, axis=(0, 1, 2)), sp)
        _write_nifti(tmp_path / f"c{int(t)}.nii.gz", np.roll(ct0, sh, axis=(0, 1, 2)), sp)
        args += ["--activity", str(tmp_path / f"a{int(t)}.nii.gz"), "--time-h", str(t)]
    _write_nifti(tmp_path / "lab.nii.gz", organ.astype(np.float32), sp)
    (tmp_path / "names.json").write_text(json.dumps({"1": {"name": "kidney_left", "kind": "kidney"}}))
    common = ["dose", *args, "--labels", str(tmp_path / "lab.nii.gz"), "--names", str(tmp_path / "names.json"), "--json",
              "--no-density"]
    a0_mbq = organ.sum() * 0.064 * 2e5 * 1e-6
    truth = a0_mbq * teff / LN2
    run(common)
    unreg = json.loads(capsys.readouterr().out)["vois"][0]
    ct_args = [a for t in times for a in ("--ct", str(tmp_path / f"c{int(t)}.nii.gz"))]
    run([*common, *ct_args])
    reg = json.loads(capsys.readouterr().out)["vois"][0]
    assert abs(reg["tia_mbq_h"] / truth - 1) < 0.05
    assert abs(reg["tia_mbq_h"] / truth - 1) < abs(unreg["tia_mbq_h"] / truth - 1)


def test_rtdose_geometry_read_back_by_gdcm(tmp_path):
    """An independent reader (GDCM through SimpleITK) places the dose grid where the source was."""
    import SimpleITK as sitk
    from datetime import datetime

    g = _Geom((4, 5, 6), (2.0, 3.0, 4.0))
    g.direction = (0.0, 1.0, 0, -1.0, 0.0, 0, 0, 0, 1.0)  # rotated in-plane: columns are axis vectors
    dose = np.random.default_rng(1).random(g.shape) * 5
    p = write_rtdose(tmp_path / "rd.dcm", dose, g, content_datetime=datetime(2026, 1, 1))
    im = sitk.ReadImage(str(p))
    assert im.GetSize() == (6, 5, 4)
    assert np.allclose(im.GetSpacing(), (2.0, 3.0, 4.0))
    assert np.allclose(im.GetOrigin(), g.origin_mm)
    assert np.allclose(im.GetDirection(), g.direction)
    import pydicom

    scale = float(pydicom.dcmread(p).DoseGridScaling)
    assert np.allclose(sitk.GetArrayFromImage(im) * scale, dose, atol=5 / 2**31)

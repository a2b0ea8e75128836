"""Image-mode dose from DICOM NM SPECT in counts, calibrated through the SPECT calibration registry."""

from __future__ import annotations

import json
import math

import pytest

from lutarterial.cli.main import run as _run

TIMES_H = (4.0, 24.0, 96.0)


def run(args):
    try:
        _run(args)
    except SystemExit as exc:
        if exc.code not in (0, None):
            raise


@pytest.fixture(scope="module")
def patient(tmp_path_factory):
    from lutarterial.imaging.synthetic import write_synthetic_patient

    out = tmp_path_factory.mktemp("synth")
    # noise-free, unblurred: each region is exactly mono-exponential with its known Teff
    return write_synthetic_patient(out, seed=3, shape=(16, 24, 24), voxel_mm=(6.0, 6.0, 6.0), n_lesions=1,
                                   spect_times_h=TIMES_H)


def _args(patient):
    args = []
    for s in patient.spect:
        args += ["--activity", s.path, "--time-h", str(s.time_h)]
    lab = patient.spect_labels_path
    return [*args, "--labels", lab, "--names", lab.replace("labels.nii.gz", "names.json")]


def test_nm_counts_calibrated_with_packaged_registry(patient, capsys):
    run(["dose", *_args(patient), "--json"])
    res = json.loads(capsys.readouterr().out)
    cals = res["activity_calibration"]
    assert [c["quantity_read"] for c in cals] == ["counts"] * 3
    # the synthetic camera's row valid on the acquisition date (2026-02-01 onwards: 9.5 cps/MBq)
    assert all(c["calibration"]["cps_per_mbq"] == 9.5 and c["calibration"]["site"] == "SYNTH" for c in cals)
    assert cals[0]["acquisition_duration_s"] == pytest.approx(120 * 20.0)
    kid = next(v for v in res["vois"] if v["voi"] == "kidney left")
    assert kid["teff_h"] == pytest.approx(45.0, rel=0.005)
    # truth: TIA = C(0) V Teff / ln2 with C(0) back-extrapolated from the 4 h truth concentration
    c4 = patient.spect[0].bqml_mean["kidney left"]
    a0_mbq = c4 * 2 ** (4.0 / 45.0) * kid["n_voxels"] * 0.216 * 1e-6
    assert kid["tia_mbq_h"] == pytest.approx(a0_mbq * 45.0 / math.log(2), rel=0.01)
    assert res["kernel"]["source_id"] == "lanconelli2012"  # 6 mm is a tabulated size


def test_explicit_registry_file_and_overrides(patient, tmp_path, capsys):
    reg = tmp_path / "cal.csv"
    reg.write_text("site,camera,collimator,nuclide,valid_from,valid_to,cps_per_mbq,time_basis,source\n"
                   "Hospital A,Camera X,MEGP,Lu-177,2020-01-01,,19.0,total,phantom 2020\n")
    run(["dose", *_args(patient), "--calibrations", str(reg), "--site", "Hospital A", "--camera", "Camera X",
         "--json"])
    res = json.loads(capsys.readouterr().out)
    assert {c["calibration"]["cps_per_mbq"] for c in res["activity_calibration"]} == {19.0}
    run(["dose", *_args(patient), "--json"])
    ref = json.loads(capsys.readouterr().out)
    t_a = next(v for v in res["vois"] if v["voi"] == "liver")["tia_mbq_h"]
    t_ref = next(v for v in ref["vois"] if v["voi"] == "liver")["tia_mbq_h"]
    assert t_a == pytest.approx(t_ref * 9.5 / 19.0, rel=1e-6)  # activity scales as 1/sensitivity


def test_no_applicable_calibration_lists_what_exists(patient, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        run(["dose", *_args(patient), "--site", "Nowhere", "--json"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "no SPECT calibration for site 'Nowhere'" in err and "SYNTH/Synthetic SPECT/MEGP/Lu-177" in err
    reg = tmp_path / "cal.csv"
    reg.write_text("site,camera,collimator,nuclide,valid_from,valid_to,cps_per_mbq,time_basis,source\n"
                   "SYNTH,Synthetic SPECT,MEGP,Lu-177,2099-01-01,,9.5,total,future\n")
    with pytest.raises(SystemExit) as exc:
        run(["dose", *_args(patient), "--calibrations", str(reg), "--json"])
    assert exc.value.code == 2
    assert "valid periods: 2099-01-01..open" in capsys.readouterr().err


def test_time_point_disagreeing_with_header_is_warned(patient, capsys):
    args = _args(patient)
    i = args.index("24.0")
    args[i] = "30.0"  # mistyped time point
    run(["dose", *args, "--json"])
    res = json.loads(capsys.readouterr().out)
    assert len(res["warnings"]) == 1 and "--time-h 30 but the header gives 24.00 h" in res["warnings"][0]
    run(["dose", *_args(patient), "--json"])
    assert json.loads(capsys.readouterr().out)["warnings"] == []

"""`lutarterial quantify` and `lutarterial uptake` end to end on a synthetic patient."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lutarterial.cli.main import run
from lutarterial.imaging.synthetic import write_synthetic_patient

SRC = Path(__file__).resolve().parents[3] / "src"


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    return write_synthetic_patient(tmp_path_factory.mktemp("cli"), seed=11, shape=(28, 44, 44),
                                   voxel_mm=(8.0, 8.0, 8.0), n_lesions=3, spect_times_h=(24.0,), ct_upsample=1)


def cli(capsys, *args):
    try:
        run(list(args))
        code = 0
    except SystemExit as exc:
        code = exc.code or 0
    out = capsys.readouterr()
    return code, out.out, out.err


def test_quantify_json_csv_png(synth, capsys, tmp_path):
    code, out, err = cli(capsys, "quantify", synth.iv.pet_dir, "--voi", synth.iv.seg_path, "--names", synth.names_path,
                         "--json", "--csv", str(tmp_path / "q.csv"), "--png", str(tmp_path / "q.png"))
    assert code == 0, err
    data = json.loads(out)
    by = {v["name"]: v for v in data["vois"]}
    assert by["spleen"]["suv_mean"] == pytest.approx(22.0, rel=5e-3)
    assert {"suv_mean", "suv_max", "suv_peak", "volume_ml", "percent_ia", "tnr"} <= set(by["lesion 1"])
    rows = list(csv.DictReader(io.StringIO((tmp_path / "q.csv").read_text())))
    assert {r["name"] for r in rows} == set(by)
    assert (tmp_path / "q.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_quantify_table_output(synth, capsys):
    code, out, _ = cli(capsys, "quantify", synth.iv.pet_dir, "--voi", synth.iv.seg_path, "--names", synth.names_path)
    assert code == 0 and "spleen" in out and "lesion 1" in out


def test_uptake_json_shape(synth, capsys, tmp_path):
    code, out, err = cli(capsys, "uptake", "--iv", synth.iv.pet_dir, "--iv-voi", synth.iv.seg_path,
                         "--iah", synth.iah.pet_dir, "--iah-voi", synth.iah.seg_path, "--names", synth.names_path,
                         "--json", "--csv", str(tmp_path / "u.csv"), "--png", str(tmp_path / "u.png"),
                         "--ia-lobe", "right", "--control-lobe", "left")
    assert code == 0, err

    def no_nan(c):
        raise AssertionError(f"non-standard JSON constant {c}")
    data = json.loads(out, parse_constant=no_nan)  # strict JSON: never NaN/Infinity
    v = next(x for x in data["vois"] if x["name"] == "lesion 1")
    assert {"iv", "iah", "ratio", "tnr"} <= set(v)
    assert v["ratio"]["suv_mean"] == pytest.approx(v["iah"]["suv_mean"] / v["iv"]["suv_mean"])
    assert set(v["tnr"]) == {"iv", "iah"}
    truth = next(x for x in synth.vois if x.name == "lesion 1")
    assert v["ratio"]["suv_mean"] == pytest.approx(truth.suv_iah / truth.suv_iv, rel=1e-2)
    s = data["summary"]["lesions"]["suv_mean"]
    assert s["n"] == 3 and s["ci_low"] < s["geometric_mean"] < s["ci_high"]
    assert set(data["lobar"]) == {"iv", "iah"}
    assert (tmp_path / "u.png").stat().st_size > 10_000
    assert "ratio_suv_mean" in (tmp_path / "u.csv").read_text().splitlines()[0]


def test_unmatched_lesions_are_reported(synth, capsys, tmp_path):
    names = json.loads(Path(synth.names_path).read_text())
    other = dict(names)
    lesion_key = next(k for k, v in names.items() if v["name"] == "lesion 2")
    other[lesion_key] = {**names[lesion_key], "name": "lesion 2b"}
    (tmp_path / "n2.json").write_text(json.dumps(other))
    code, out, err = cli(capsys, "uptake", "--iv", synth.iv.pet_dir, "--iv-voi", synth.iv.seg_path,
                         "--iah", synth.iah.pet_dir, "--iah-voi", synth.iah.seg_path, "--names", synth.names_path,
                         "--iah-names", str(tmp_path / "n2.json"), "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["unmatched"] == {"iv": ["lesion 2"], "iah": ["lesion 2b"]}
    assert any("not matched" in m for m in data["messages"])


def test_missing_weight_is_a_clear_error_and_can_be_supplied(synth, capsys, tmp_path):
    import pydicom

    d = tmp_path / "pet"
    shutil.copytree(synth.iv.pet_dir, d)
    for f in d.iterdir():
        ds = pydicom.dcmread(f)
        del ds.PatientWeight
        ds.save_as(f)
    code, _, err = cli(capsys, "quantify", str(d), "--voi", synth.iv.seg_path, "--names", synth.names_path, "--json")
    assert code == 2
    assert "PatientWeight" in err and "--weight-kg" in err and "Traceback" not in err
    code, out, err = cli(capsys, "quantify", str(d), "--voi", synth.iv.seg_path, "--names", synth.names_path,
                         "--json", "--weight-kg", str(synth.iv.weight_kg))
    assert code == 0, err
    assert {v["name"]: v for v in json.loads(out)["vois"]}["spleen"]["suv_mean"] == pytest.approx(22.0, rel=5e-3)


def test_spect_quantify_with_packaged_calibration_and_pvc(synth, capsys):
    sp = synth.spect[0]
    args = ["quantify", str(Path(sp.path).parent), "--voi", synth.spect_labels_path,
            "--names", str(Path(synth.out_dir) / "spect" / "names.json"), "--json"]
    code, out, err = cli(capsys, *args)
    assert code == 0, err
    by = {v["name"]: v for v in json.loads(out)["vois"]}
    assert by["spleen"]["mean_bqml"] == pytest.approx(sp.bqml_mean["spleen"], rel=5e-3)
    code, out, err = cli(capsys, *args, "--pvc")
    assert code == 0, err
    pvc = {v["name"]: v for v in json.loads(out)["vois"]}
    assert pvc["lesion 1"]["recovery_coefficient"] < 1
    assert pvc["lesion 1"]["mean_bqml"] > by["lesion 1"]["mean_bqml"]
    code, _, err = cli(capsys, *args, "--camera", "Unknown camera")
    assert code == 2 and "no SPECT calibration" in err


def test_missing_input_is_a_clear_error(capsys, tmp_path):
    code, _, err = cli(capsys, "quantify", str(tmp_path / "nope"), "--voi", str(tmp_path / "x.nii.gz"))
    assert code == 2 and "no such" in err


def test_subprocess_entry_point(synth):
    env = {"PYTHONPATH": str(SRC)}
    r = subprocess.run([sys.executable, "-m", "lutarterial", "quantify", synth.iv.pet_dir, "--voi", synth.iv.seg_path,
                        "--names", synth.names_path, "--json", "--no-peak"], capture_output=True, text=True,
                       env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["vois"][0]["suv_peak"] is None


def test_spect_decay_to_reference_time(synth, capsys):
    from datetime import datetime

    sp = synth.spect[0]
    ref = datetime.fromisoformat(synth.therapy_time)  # decay back to administration
    factor = 2 ** ((datetime.fromisoformat(sp.acquisition_time) - ref).total_seconds() / 574300.8)
    args = ["quantify", str(Path(sp.path).parent), "--voi", synth.spect_labels_path,
            "--names", str(Path(synth.out_dir) / "spect" / "names.json"), "--json", "--no-peak"]
    code, out, err = cli(capsys, *args, "--reference-time", ref.isoformat())
    assert code == 0, err
    by = {v["name"]: v for v in json.loads(out)["vois"]}
    assert by["spleen"]["mean_bqml"] == pytest.approx(factor * sp.bqml_mean["spleen"], rel=5e-3)
    code, _, err = cli(capsys, *args, "--reference-time", "yesterday")
    assert code == 2 and "--reference-time" in err


def test_quantify_lobar_mode(synth, capsys):
    code, out, err = cli(capsys, "quantify", synth.iah.pet_dir, "--voi", synth.iah.seg_path, "--names",
                         synth.names_path, "--json", "--no-peak", "--ia-lobe", "right", "--control-lobe", "left")
    assert {v.lobe for v in synth.vois if v.kind == "lesion"} == {"right", "left"}  # seed 11 has both
    assert code == 0, err
    lob = json.loads(out)["lobar"]
    assert lob["ratio"] == pytest.approx(lob["tnr_ia"] / lob["tnr_control"])
    code, _, err = cli(capsys, "quantify", synth.iah.pet_dir, "--voi", synth.iah.seg_path, "--names",
                       synth.names_path, "--ia-lobe", "right")
    assert code == 2 and "--control-lobe" in err


def test_folder_with_two_pet_series_needs_a_series_uid(synth, capsys, tmp_path):
    """Two attenuation-corrected PET reconstructions in one folder: an error listing both, then
    --series-uid picks one (and the result equals reading that series' own folder)."""
    import pydicom

    study = tmp_path / "study"
    shutil.copytree(synth.iv.pet_dir, study / "a")
    shutil.copytree(synth.iv.pet_dir, study / "b")
    uid_b = "1.2.826.0.1.3680043.8.498.999"
    for n, f in enumerate(sorted((study / "b").iterdir())):
        ds = pydicom.dcmread(f)
        ds.SeriesInstanceUID = uid_b
        ds.SOPInstanceUID = f"{uid_b}.{n + 1}"
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.save_as(f)
    code, out, err = cli(capsys, "quantify", str(study), "--voi", synth.iv.seg_path, "--names", synth.names_path,
                         "--json", "--no-peak")
    assert code == 2 and "several image series" in err and "--series-uid" in err
    code, out, err = cli(capsys, "quantify", str(study), "--voi", synth.iv.seg_path, "--names", synth.names_path,
                         "--json", "--no-peak", "--series-uid", uid_b)
    assert code == 0, err
    ref_code, ref_out, _ = cli(capsys, "quantify", synth.iv.pet_dir, "--voi", synth.iv.seg_path, "--names",
                               synth.names_path, "--json", "--no-peak")
    assert ref_code == 0
    assert json.loads(out)["vois"] == json.loads(ref_out)["vois"]

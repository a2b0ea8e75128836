"""Issue 11 batch: manifest reading and how a worker reports bad input versus a transient failure."""

from __future__ import annotations

from pathlib import Path

import pytest

from lutarterial.errors import InvalidInputError
from lutarterial.workflows import batch


def _files(tmp_path: Path) -> Path:
    for p in ("p/iv/pet", "p/iah/pet", "p/spect"):
        (tmp_path / p).mkdir(parents=True, exist_ok=True)
    for f in ("p/iv/seg.dcm", "p/iah/seg.dcm", "p/names.json"):
        (tmp_path / f).write_text("x")
    return tmp_path


def test_manifest_paths_are_relative_to_the_manifest_and_checked(tmp_path: Path) -> None:
    _files(tmp_path)
    m = tmp_path / "m.csv"
    m.write_text("participant,iv,iv_voi,iah,iah_voi,names,spect\n"
                 "bdx-001,p/iv/pet,p/iv/seg.dcm,p/iah/pet,p/iah/seg.dcm,p/names.json,p/spect\n")
    (row,) = batch.read_manifest(m)
    assert row.participant == "BDX-001" and row.iv == str((tmp_path / "p/iv/pet").resolve())
    assert row.spect == str((tmp_path / "p/spect").resolve()) and row.calibration is None
    m.write_text("participant,iv,iv_voi,iah,iah_voi,names\nBDX-001,p/iv/pet,p/iv/seg.dcm,p/iah/pet,p/nope.dcm,\n")
    with pytest.raises(InvalidInputError, match="line 2: iah_voi p/nope.dcm does not exist"):
        batch.read_manifest(m)
    m.write_text("participant,iv,iah\nBDX-001,a,b\n")
    with pytest.raises(InvalidInputError, match="missing column"):
        batch.read_manifest(m)
    m.write_text("participant,iv,iv_voi,iah,iah_voi,names\n"
                 "BDX-001,p/iv/pet,p/iv/seg.dcm,p/iah/pet,p/iah/seg.dcm,\n"
                 "bdx-001,p/iv/pet,p/iv/seg.dcm,p/iah/pet,p/iah/seg.dcm,\n")
    with pytest.raises(InvalidInputError, match="line 3: participant BDX-001 appears twice"):
        batch.read_manifest(m)


def test_bad_input_is_returned_transient_errors_raise_for_retry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _files(tmp_path)
    row = batch.ManifestRow(2, "BDX-001", *(str(tmp_path / p) for p in ("p/iv/pet", "p/iv/seg.dcm", "p/iah/pet",
                                                                        "p/iah/seg.dcm")), None)
    from lutarterial.workflows import analyse

    def bad(*a: object, **k: object) -> None:
        raise InvalidInputError("the SEG belongs to frame of reference 1.2")

    monkeypatch.setattr(analyse, "uptake_analysis", bad)
    out = batch.analyse_row(row)
    assert out["participant"] == "BDX-001" and out["error"] == "the SEG belongs to frame of reference 1.2"

    def flaky(*a: object, **k: object) -> None:
        raise OSError("stale NFS file handle")

    monkeypatch.setattr(analyse, "uptake_analysis", flaky)
    with pytest.raises(OSError):  # raised, so that Dask retries the task
        batch.analyse_row(row)

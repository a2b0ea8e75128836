"""Issue 10 (item 4): the SPECT study path measures organs at risk without their lesion voxels,
by the imaging rule (docs/imaging.md "Background VOIs"), like the imaging metrics and voxel
dosimetry: a kidney's activity and absorbed dose never include an overlapping lesion."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest


@pytest.fixture(scope="module")
def patient(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from lutarterial.imaging.synthetic import write_synthetic_patient

    d = tmp_path_factory.mktemp("spect-overlap")
    return write_synthetic_patient(d, seed=4, shape=(24, 40, 40), voxel_mm=(8.0, 8.0, 8.0), n_lesions=1,
                                   spect_times_h=(4.0, 24.0, 96.0), ct_upsample=1)


def test_kidney_tac_excludes_an_overlapping_lesion(patient: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from lutarterial.imaging import io as imio
    from lutarterial.imaging.types import LabelMap, VoiKind, VoiSpec, crop_mask
    from lutarterial.workflows import analyse

    spect_dir = Path(patient.spect[0].path).parents[1]
    paths = sorted(str(p) for p in spect_dir.glob("t*h/nm.dcm"))
    real = imio.read_labels
    shared: dict[str, np.ndarray] = {}

    def with_overlap(*args: Any, **kwargs: Any) -> LabelMap:
        """The real label map plus a lesion VOI covering half of the left kidney (as a DICOM SEG
        with overlapping segments would give)."""
        lm = real(*args, **kwargs)
        shape = lm.geometry.shape
        kidney = next(v for v in lm.vois if v.spec.name == "kidney left").full(shape)
        half = kidney.copy()
        idx = np.argwhere(kidney)
        for z, y, x in idx[len(idx) // 2:]:
            half[z, y, x] = False
        shared["kidney"], shared["lesion"] = kidney, half
        spec = VoiSpec(max(v.spec.label for v in lm.vois) + 1, "renal lesion", VoiKind.LESION)
        return LabelMap(lm.geometry, (*lm.vois, crop_mask(spec, half)), lm.frame_of_reference_uid)

    base = analyse.spect_dosimetry_analysis(paths, patient.spect_labels_path, spect_dir / "names.json", voxel=False)
    monkeypatch.setattr(imio, "read_labels", with_overlap)
    out = analyse.spect_dosimetry_analysis(paths, patient.spect_labels_path, spect_dir / "names.json", voxel=False)
    tacs = {t["voi"]: t for t in out.result["tacs"]}
    kept = shared["kidney"] & ~shared["lesion"]
    assert tacs["kidney left"]["volume_ml"] == pytest.approx(kept.sum() * 0.512)  # 8 mm voxels: 0.512 mL
    assert tacs["renal lesion"]["volume_ml"] == pytest.approx(shared["lesion"].sum() * 0.512)
    before = {t["voi"]: t for t in base.result["tacs"]}
    assert all(a < b for a, b in zip(tacs["kidney left"]["activity_mbq"], before["kidney left"]["activity_mbq"]))
    assert any("kidney left" in n and "renal lesion" in n for n in out.result["notes"])
    assert "notes" not in base.result  # nothing overlapped: nothing said, result as before
    others = [n for n in before if n != "kidney left"]
    assert "kidney right" in others and "spleen" in others
    for name in others:  # every other VOI is untouched
        assert tacs[name]["activity_mbq"] == before[name]["activity_mbq"], name

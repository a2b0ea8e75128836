"""One-call workflows over files, for the CLI, the web demo and the dosimetry part.

    quantify_files(image_path, voi_path, names=None, *, overrides..., spect options...)
        -> (Image, LabelMap, StudyMetrics)
    uptake_files(iv_path, iv_voi, iah_path, iah_voi, names=None, *, iah_names=None,
                 ia_lobe=None, control_lobe=None, png=False) -> UptakeResult
        UptakeResult.as_dict() is the `lutarterial uptake --json` document; .png holds PNG bytes.
"""

from __future__ import annotations

import dataclasses

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from lutarterial.errors import InvalidInputError
from lutarterial.imaging import io as iio
from lutarterial.imaging import spect
from lutarterial.imaging.compare import Comparison, LobarResult, compare_studies, lobar_comparison
from lutarterial.imaging.metrics import StudyMetrics, quantify
from lutarterial.imaging.types import Image, LabelMap, Quantity

__all__ = ["quantify_files", "uptake_files", "UptakeResult"]


def quantify_files(
    image_path: str | Path,
    voi_path: str | Path,
    names: Any = None,
    *,
    weight_kg: float | None = None,
    height_m: float | None = None,
    sex: str | None = None,
    injected_mbq: float | None = None,
    injection_time: datetime | None = None,
    half_life_s: float | None = None,
    calibrations: str | Path | None = None,
    site: str | None = None,
    camera: str | None = None,
    collimator: str | None = None,
    nuclide: str = "Lu-177",
    recovery: str | Path | None = None,
    pvc: bool = False,
    peak: bool = True,
    reference_time: datetime | None = None,
    series_uid: str | None = None,
    allow_nonfinite: bool = False,
) -> tuple[Image, LabelMap, StudyMetrics]:
    """Read, calibrate (SPECT counts), apply header overrides, place VOIs and quantify one study.

    ``series_uid`` picks one series when the folder holds several candidate PET/SPECT series.
    """
    image = iio.read_image(image_path, series_uid=series_uid)
    rc = None
    if image.quantity is Quantity.CNTS:
        reg = spect.CalibrationRegistry.from_csv(calibrations) if calibrations else spect.CalibrationRegistry.packaged()
        image = spect.calibrate_spect_from_registry(image, reg, site=site, camera=camera, collimator=collimator,
                                                    nuclide=nuclide)
    elif image.modality == "NM" and image.quantity is Quantity.BQML and image.timing is None:
        # Quantitative SPECT reconstruction (Bq/mL in the file): header dose/injection give %IA.
        image = dataclasses.replace(image, timing=spect.spect_header_timing(image))
    if pvc:
        cam = camera or str(image.meta.get("model", ""))
        col = collimator or str(image.meta.get("collimator", ""))
        rc = (spect.RecoveryTable.from_csv(recovery, cam, col, nuclide) if recovery
              else spect.RecoveryTable.packaged(cam, col, nuclide))
    image = iio.with_overrides(
        image, weight_kg=weight_kg, height_m=height_m, sex=sex,
        injected_activity_bq=injected_mbq * 1e6 if injected_mbq is not None else None,
        injection_time=injection_time, half_life_s=half_life_s,
    )
    if reference_time is not None:
        hl = half_life_s or image.meta.get("half_life_s") or (image.timing.half_life_s if image.timing else None)
        if not hl:
            raise InvalidInputError("decay to a reference time needs the half-life (RadionuclideHalfLife or --half-life-s)")
        image = spect.decay_correct(image, reference_time, float(hl))
    labels = iio.read_labels(voi_path, image, names=names)
    metrics = quantify(image, labels, peak=peak, require_suv=image.modality == "PT", recovery=rc,
                       allow_nonfinite=allow_nonfinite)
    return image, labels, metrics


@dataclass(frozen=True)
class UptakeResult:
    iv_image: Image
    iah_image: Image
    iv_labels: LabelMap
    iah_labels: LabelMap
    iv: StudyMetrics
    iah: StudyMetrics
    comparison: Comparison
    lobar: dict[str, LobarResult] | None
    png: bytes | None

    def as_dict(self) -> dict[str, Any]:
        from lutarterial.imaging.report import comparison_dict

        return comparison_dict(self.comparison, self.lobar)


def uptake_files(
    iv_path: str | Path, iv_voi: str | Path, iah_path: str | Path, iah_voi: str | Path, names: Any = None, *,
    iah_names: Any = None, ia_lobe: str | None = None, control_lobe: str | None = None, png: bool = False,
    peak: bool = True, iv_overrides: dict[str, Any] | None = None, iah_overrides: dict[str, Any] | None = None,
    allow_nonfinite: bool = False,
) -> UptakeResult:
    """IAH versus IV for one patient from files (see :func:`compare_studies`)."""
    iv_img, iv_lab, iv_m = quantify_files(iv_path, iv_voi, names, peak=peak, allow_nonfinite=allow_nonfinite,
                                          **(iv_overrides or {}))
    iah_img, iah_lab, iah_m = quantify_files(iah_path, iah_voi, iah_names or names, peak=peak,
                                             allow_nonfinite=allow_nonfinite, **(iah_overrides or {}))
    comp = compare_studies(iv_m, iah_m, iv_timing=iv_img.timing, iah_timing=iah_img.timing)
    lobar = None
    if ia_lobe or control_lobe:
        if not (ia_lobe and control_lobe):
            raise InvalidInputError("lobar mode needs both the IA lobe and the control lobe")
        lobar = {"iv": lobar_comparison(iv_m, ia_lobe, control_lobe),
                 "iah": lobar_comparison(iah_m, ia_lobe, control_lobe)}
    figure = None
    if png:
        from lutarterial.imaging.figure import render_png

        figure = render_png([("IV", iv_img, iv_lab, iv_m), ("IAH", iah_img, iah_lab, iah_m)], comp)
    return UptakeResult(iv_img, iah_img, iv_lab, iah_lab, iv_m, iah_m, comp, lobar, figure)

"""SPECT quantification: counts -> Bq/mL with a calibration registry, recovery coefficients, decay.

Activity concentration (Bq/mL) = counts / (S x T) x 1e6 / V_voxel, where S is the calibration
factor (cps/MBq) of the site/camera/collimator/nuclide valid on the acquisition date, T the
acquisition time on the registry row's basis (``total`` = acquisition wall-clock time = frame
duration x NumberOfFramesInRotation x NumberOfRotations, heads acquiring simultaneously are
not multiplied in; ``per_projection`` = frame duration) and V_voxel the voxel volume (mL). This is
the volume-sensitivity approach of MIRD Pamphlet No. 26 (Ljungberg et al., J Nucl Med
2016;57:151-162).

Recovery coefficients (partial-volume correction) come from a sphere-phantom table per camera;
RC(volume) is interpolated linearly in log(volume) and clamped to the measured range (a VOI
smaller than the smallest sphere gets the smallest sphere's RC, i.e. it is under-corrected).

Public API::

    CalibrationRegistry.packaged() / .from_csv(path); registry.select(site, camera, collimator, nuclide, on)
    RecoveryTable.packaged(camera, collimator, nuclide) / .from_csv(path, ...); table(volume_ml) -> RC
    calibrate_spect(image, calibration, *, frame_duration_s=None, projections=None) -> Image (Bq/mL)
    calibrate_spect_from_registry(image, registry, *, site=None, camera=None, collimator=None,
                                  nuclide="Lu-177") -> Image
    decay_correct(image, reference_time, half_life_s) -> Image
    read_spect_activity(path, *, registry=None, site=None, camera=None, collimator=None,
                        nuclide="Lu-177") -> Image   (read + calibrate in one call; Bq/mL at acquisition)
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
from dataclasses import dataclass
from datetime import date, datetime
from importlib import resources
from pathlib import Path

import numpy as np

from lutarterial.errors import DicomConformanceError, InvalidInputError, NotFoundError
from lutarterial.imaging.types import Image, PetTiming, Quantity

__all__ = [
    "Calibration",
    "CalibrationRegistry",
    "RecoveryTable",
    "calibrate_spect",
    "calibrate_spect_from_registry",
    "decay_correct",
    "read_spect_activity",
    "spect_header_timing",
]


def _norm(s: str) -> str:
    return " ".join(str(s).strip().lower().replace("_", " ").replace("-", "").split())


def _read_csv(text: str) -> list[dict[str, str]]:
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    return list(csv.DictReader(io.StringIO("\n".join(lines))))


@dataclass(frozen=True)
class Calibration:
    site: str
    camera: str
    collimator: str
    nuclide: str
    valid_from: date
    valid_to: date | None
    cps_per_mbq: float
    time_basis: str
    source: str = ""

    def __post_init__(self) -> None:
        if not (self.cps_per_mbq > 0 and math.isfinite(self.cps_per_mbq)):
            raise InvalidInputError(f"calibration {self.site}/{self.camera}: cps_per_mbq must be positive")
        if self.time_basis not in ("total", "per_projection"):
            raise InvalidInputError(f"calibration time_basis must be 'total' or 'per_projection', not {self.time_basis!r}")
        if self.valid_to is not None and self.valid_to < self.valid_from:
            raise InvalidInputError(f"calibration {self.site}/{self.camera}: valid_to before valid_from")


@dataclass(frozen=True)
class CalibrationRegistry:
    calibrations: tuple[Calibration, ...]

    @staticmethod
    def from_text(text: str) -> CalibrationRegistry:
        rows = []
        for i, r in enumerate(_read_csv(text), start=2):
            try:
                rows.append(Calibration(
                    site=r["site"].strip(), camera=r["camera"].strip(), collimator=r["collimator"].strip(),
                    nuclide=r["nuclide"].strip(), valid_from=date.fromisoformat(r["valid_from"].strip()),
                    valid_to=date.fromisoformat(r["valid_to"].strip()) if (r.get("valid_to") or "").strip() else None,
                    cps_per_mbq=float(r["cps_per_mbq"]), time_basis=(r.get("time_basis") or "total").strip(),
                    source=(r.get("source") or "").strip(),
                ))
            except (KeyError, ValueError, TypeError) as exc:
                raise InvalidInputError(f"calibration file row {i}: {exc}") from None
        return CalibrationRegistry(tuple(rows))

    @staticmethod
    def from_csv(path: str | Path) -> CalibrationRegistry:
        p = Path(path)
        if not p.is_file():
            raise NotFoundError(f"no such calibration file: {p}")
        return CalibrationRegistry.from_text(p.read_text())

    @staticmethod
    def packaged() -> CalibrationRegistry:
        text = resources.files("lutarterial.imaging").joinpath("data/spect_calibrations.csv").read_text()
        return CalibrationRegistry.from_text(text)

    def select(self, site: str, camera: str, collimator: str, nuclide: str, on: date) -> Calibration:
        """The calibration valid on ``on`` (latest valid_from not after it); clear error if none."""
        key = (_norm(site), _norm(camera), _norm(collimator), _norm(nuclide))
        same = [c for c in self.calibrations
                if (_norm(c.site), _norm(c.camera), _norm(c.collimator), _norm(c.nuclide)) == key]
        if not same:
            have = "; ".join(sorted({f"{c.site}/{c.camera}/{c.collimator}/{c.nuclide}" for c in self.calibrations}))
            raise NotFoundError(
                f"no SPECT calibration for site {site!r}, camera {camera!r}, collimator {collimator!r}, "
                f"nuclide {nuclide!r}; registry has: {have or 'nothing'}"
            )
        valid = [c for c in same if c.valid_from <= on and (c.valid_to is None or on <= c.valid_to)]
        if not valid:
            periods = ", ".join(f"{c.valid_from}..{c.valid_to or 'open'}" for c in sorted(same, key=lambda c: c.valid_from))
            raise NotFoundError(
                f"no SPECT calibration for {site}/{camera}/{collimator}/{nuclide} valid on {on.isoformat()} "
                f"(valid periods: {periods})"
            )
        return max(valid, key=lambda c: c.valid_from)


@dataclass(frozen=True)
class RecoveryTable:
    camera: str
    collimator: str
    nuclide: str
    volumes_ml: tuple[float, ...]
    coefficients: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.volumes_ml) < 2 or len(self.volumes_ml) != len(self.coefficients):
            raise InvalidInputError("a recovery table needs at least two (volume, RC) pairs")
        if any(b <= a for a, b in zip(self.volumes_ml, self.volumes_ml[1:], strict=False)):
            raise InvalidInputError("recovery table volumes must increase")
        if any(not (0 < r <= 1.2) for r in self.coefficients):
            raise InvalidInputError("recovery coefficients must lie in (0, 1.2]")

    def __call__(self, volume_ml: float) -> float:
        if not volume_ml > 0:
            raise InvalidInputError("VOI volume must be positive for a recovery coefficient")
        x = np.log(np.asarray(self.volumes_ml))
        return float(np.interp(math.log(volume_ml), x, np.asarray(self.coefficients)))

    @staticmethod
    def from_text(text: str, camera: str, collimator: str, nuclide: str) -> RecoveryTable:
        key = (_norm(camera), _norm(collimator), _norm(nuclide))
        pts = sorted(
            (float(r["volume_ml"]), float(r["recovery_coefficient"]))
            for r in _read_csv(text)
            if (_norm(r["camera"]), _norm(r["collimator"]), _norm(r["nuclide"])) == key
        )
        if not pts:
            raise NotFoundError(f"no recovery coefficients for camera {camera!r}, collimator {collimator!r}, {nuclide}")
        return RecoveryTable(camera, collimator, nuclide, tuple(p[0] for p in pts), tuple(p[1] for p in pts))

    @staticmethod
    def from_csv(path: str | Path, camera: str, collimator: str, nuclide: str) -> RecoveryTable:
        p = Path(path)
        if not p.is_file():
            raise NotFoundError(f"no such recovery-coefficient file: {p}")
        return RecoveryTable.from_text(p.read_text(), camera, collimator, nuclide)

    @staticmethod
    def packaged(camera: str, collimator: str, nuclide: str) -> RecoveryTable:
        text = resources.files("lutarterial.imaging").joinpath("data/recovery_coefficients.csv").read_text()
        return RecoveryTable.from_text(text, camera, collimator, nuclide)


def calibrate_spect(
    image: Image, calibration: Calibration, *, frame_duration_s: float | None = None, projections: int | None = None,
) -> Image:
    """Counts -> Bq/mL at acquisition time. Duration and projections default to the header."""
    if image.quantity is Quantity.BQML:
        return image
    if image.quantity is not Quantity.CNTS:
        raise InvalidInputError(f"SPECT calibration expects counts, image holds {image.quantity.value}")
    fd = frame_duration_s or image.meta.get("frame_duration_s")
    if not fd:
        raise DicomConformanceError("ActualFrameDuration (0018,1242) missing; supply the frame duration")
    t = float(fd)
    if calibration.time_basis == "total":
        n = projections or image.meta.get("projections")
        if not n:
            raise DicomConformanceError("NumberOfFramesInRotation (0054,0053) missing; supply the projection count")
        t *= int(n)
    scale = 1e6 / (calibration.cps_per_mbq * t * image.geometry.voxel_volume_ml)
    meta = dict(image.meta)
    meta.update(calibration=dataclasses.asdict(calibration), acquisition_duration_s=t)
    return dataclasses.replace(image, array=(image.array * scale).astype(np.float32), quantity=Quantity.BQML,
                               meta=meta, timing=spect_header_timing(image))


def spect_header_timing(image: Image) -> PetTiming | None:
    """Administration timing of an NM image from its header values (for %IA and SUV).

    Activity is at the acquisition time (START). Partial header timing is kept so that
    ``with_overrides`` (--injection-time / --injected-mbq) can complete it; None when the header
    carries neither the activity nor the injection time.
    """
    if image.timing is not None:
        return image.timing
    if not (image.meta.get("injected_bq") or image.meta.get("injection_time")):
        return None
    inj = image.meta.get("injection_time")
    return PetTiming(
        injected_activity_bq=float(image.meta["injected_bq"]) if image.meta.get("injected_bq") else None,
        injection_time=datetime.fromisoformat(str(inj)) if inj else None,
        scan_time=image.acquisition_time, decay_correction="START",
        half_life_s=image.meta.get("half_life_s"), weight_kg=image.meta.get("weight_kg"),
    )


def calibrate_spect_from_registry(
    image: Image, registry: CalibrationRegistry, *, site: str | None = None, camera: str | None = None,
    collimator: str | None = None, nuclide: str = "Lu-177",
) -> Image:
    """Select the calibration by header (InstitutionName, ManufacturerModelName, collimator, date)."""
    site = site or str(image.meta.get("institution", ""))
    camera = camera or str(image.meta.get("model", ""))
    collimator = collimator or str(image.meta.get("collimator", ""))
    if not (site and camera and collimator):
        raise DicomConformanceError(
            "cannot select a SPECT calibration: site (InstitutionName), camera (ManufacturerModelName) or "
            "collimator (CollimatorGridName) missing; supply --site/--camera/--collimator"
        )
    if image.acquisition_time is None:
        raise DicomConformanceError("AcquisitionDate/Time missing; cannot choose the calibration valid on that date")
    cal = registry.select(site, camera, collimator, nuclide, image.acquisition_time.date())
    return calibrate_spect(image, cal)


def decay_correct(image: Image, reference_time: datetime, half_life_s: float) -> Image:
    """Bq/mL at acquisition time -> Bq/mL decay-corrected to ``reference_time`` (physical decay)."""
    if image.quantity is not Quantity.BQML:
        raise InvalidInputError("decay correction applies to Bq/mL images")
    if image.acquisition_time is None:
        raise DicomConformanceError("acquisition time missing; cannot decay-correct")
    if not half_life_s > 0:
        raise InvalidInputError("half-life must be positive")
    dt = (image.acquisition_time - reference_time).total_seconds()
    f = 2.0 ** (dt / half_life_s)
    meta = dict(image.meta)
    meta["decay_corrected_to"] = reference_time.isoformat()
    timing = image.timing
    if timing is not None:
        timing = dataclasses.replace(timing, scan_time=reference_time)
    return dataclasses.replace(image, array=(image.array * f).astype(np.float32), meta=meta, timing=timing)


def read_spect_activity(
    path: str | Path, *, registry: CalibrationRegistry | None = None, site: str | None = None,
    camera: str | None = None, collimator: str | None = None, nuclide: str = "Lu-177",
) -> Image:
    """Read a reconstructed SPECT (DICOM NM or NIfTI) and return Bq/mL at acquisition time.

    Counts are calibrated with the registry row valid on the acquisition date (packaged registry
    by default); images already in Bq/mL are returned unchanged. ``image.acquisition_time`` is the
    time point for kinetics; ``image.timing`` carries the administered activity when the header has it.
    """
    from lutarterial.imaging.io import read_image

    img = read_image(path)
    if img.quantity is Quantity.CNTS:
        img = calibrate_spect_from_registry(img, registry or CalibrationRegistry.packaged(), site=site,
                                            camera=camera, collimator=collimator, nuclide=nuclide)
    elif img.quantity is not Quantity.BQML:
        raise InvalidInputError(f"{path}: SPECT image holds {img.quantity.value}, expected counts or Bq/mL")
    elif img.modality == "NM" and img.timing is None:
        img = dataclasses.replace(img, timing=spect_header_timing(img))  # quantitative SPECT (xSPECT Quant...)
    return img

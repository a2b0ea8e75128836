"""A participant's analyses as pure functions over files, and their storage (reproduced / superseding).

Pure part (no database; what Dask workers run)::

    uptake_analysis(iv_pet, iv_voi, iah_pet, iah_voi, names=None) -> AnalysisOutcome  # kind pet_iah_vs_iv
    spect_dosimetry_analysis(spect=[t1, t2, ...], labels, names=None, calibration=None,
                             prior_doses=()) -> AnalysisOutcome                      # kind spect_iah_dosimetry

Each outcome carries the engine version, its parameters, the SHA-256 of every input (over the
sorted file digests of a folder, so a folder of links to the store hashes like the stored series)
and the series UIDs read. Results are normalised through JSON, so a stored result and a fresh
one compare byte for byte.

Storage (client side only)::

    store_outcomes(session, actor, participant, outcomes, reason=...) -> [StoredAnalysis]

Per kind, the participant's current analysis (``superseded_by_id IS NULL``) is compared with the
outcome: same engine version, inputs and parameters and identical numbers -> ``reproduced``
(``reproduced_at`` set, nothing duplicated); otherwise a new row is written and the old one gets
``superseded_by_id`` and ``superseded_reason`` (both kept). Everything in one audited unit of work:
all outcomes are stored or none.

SPECT-measured dosimetry (MIRD 26 volume sensitivity via the site/camera calibration registry):
each time point is read in counts and calibrated with the registry row valid on its acquisition
date (an unknown camera or date is an error naming them); time after administration from the
header's RadiopharmaceuticalStartDateTime; VOI activity = sum of Bq/mL x voxel volume; mass =
VOI volume x 1.04 g/mL (soft tissue, the kernel's density); kinetics, organ/lesion self-dose,
cumulative dose and BED against limits (with prior cycles' doses when given) by
:func:`lutarterial.dosimetry.workflow.tac_dosimetry`; voxel dose with DVH by
:func:`lutarterial.dosimetry.workflow.voxel_dosimetry` on the first time point's grid.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lutarterial.errors import InvalidInputError, LutarterialError, NotFoundError

__all__ = ["ENGINE_VERSION", "AnalysisOutcome", "StoredAnalysis", "path_digest", "uptake_analysis",
           "spect_dosimetry_analysis", "store_outcomes", "write_figures", "per_voi_table", "UPTAKE_KIND", "DOSIMETRY_KIND",
           "TISSUE_DENSITY_G_ML"]

UPTAKE_KIND = "pet_iah_vs_iv"
DOSIMETRY_KIND = "spect_iah_dosimetry"
#: Soft-tissue density used for VOI masses (the density of the published dose-voxel kernels).
TISSUE_DENSITY_G_ML = 1.04


def _engine_version() -> str:
    from lutarterial import __version__

    return f"lutarterial {__version__}"


ENGINE_VERSION = _engine_version()


def path_digest(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file, or of a folder as SHA-256 over its files' sorted hex digests (names ignored)."""
    p = Path(path)
    if p.is_file():
        return _file_sha(p)
    if not p.is_dir():
        raise NotFoundError(f"no such file or directory: {p}")
    digests = sorted(_file_sha(f) for f in p.rglob("*") if f.is_file() and not f.name.startswith("."))
    h = hashlib.sha256()
    for d in digests:
        h.update(d.encode())
    return h.hexdigest()


def _file_sha(p: Path) -> str:
    h = hashlib.sha256()
    with p.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _plain(x: Any) -> Any:
    import math

    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if hasattr(x, "isoformat"):
        return x.isoformat()
    if hasattr(x, "item") and not isinstance(x, (str, bytes)):
        x = x.item()  # numpy scalar
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def _normalise(doc: Any) -> Any:
    """Through strict JSON (sorted keys; tuples become lists; dates ISO; NaN null) so stored and fresh
    results compare equal byte for byte."""
    return json.loads(json.dumps(_plain(doc), sort_keys=True, allow_nan=False))


def _canonical(doc: Any) -> str:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), allow_nan=False)


@dataclass(frozen=True)
class AnalysisOutcome:
    """One analysis result with its provenance (picklable: Dask workers return it)."""

    kind: str
    result: dict[str, Any]
    parameters: dict[str, Any]
    input_hashes: dict[str, str]
    series_instance_uids: list[str] = field(default_factory=list)
    study_instance_uid: str | None = None
    software_version: str = ENGINE_VERSION
    #: figure PNGs by SHA-256 (referenced from ``result["figures"]``); written by the storing side
    files: dict[str, bytes] = field(default_factory=dict)

    @property
    def result_sha256(self) -> str:
        return hashlib.sha256(_canonical(self.result).encode()).hexdigest()


def _series_uid_of(path: str | os.PathLike[str]) -> tuple[str | None, str | None]:
    from lutarterial.imaging.dicom_series import dcmread_tolerant

    p = Path(path)
    files = [p] if p.is_file() else sorted(f for f in p.rglob("*") if f.is_file() and not f.name.startswith("."))
    for f in files:
        if f.suffix.lower() in (".json", ".gz", ".nii"):
            continue
        try:
            ds = dcmread_tolerant(f, stop_before_pixels=True)
        except Exception:  # noqa: BLE001 - non-DICOM (NIfTI) inputs have no UID
            continue
        return str(ds.get("StudyInstanceUID", "") or "") or None, str(ds.get("SeriesInstanceUID", "") or "") or None
    return None, None


def per_voi_table(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Per VOI: IV, IAH and IAH/IV of SUVmean (and TNR) from a stored uptake result."""
    rows = []
    for v in result.get("vois", []):
        rows.append({"voi": v.get("name"), "kind": v.get("kind"),
                     "iv_suv_mean": (v.get("iv") or {}).get("suv_mean"),
                     "iah_suv_mean": (v.get("iah") or {}).get("suv_mean"),
                     "ratio_suv_mean": (v.get("ratio") or {}).get("suv_mean"),
                     "iv_tnr": (v.get("tnr") or {}).get("iv"), "iah_tnr": (v.get("tnr") or {}).get("iah"),
                     "ratio_tnr": (v.get("ratio") or {}).get("tnr")})
    return rows


def uptake_analysis(iv_pet: str | os.PathLike[str], iv_voi: str | os.PathLike[str], iah_pet: str | os.PathLike[str],
                    iah_voi: str | os.PathLike[str], names: str | os.PathLike[str] | None = None, *,
                    iah_names: str | os.PathLike[str] | None = None, iv_series_uid: str | None = None,
                    iah_series_uid: str | None = None, png: bool = False) -> AnalysisOutcome:
    """IAH-vs-IV 68Ga PET uptake comparison (``imaging.compare``) for one participant, from files.

    ``png``: also render the engine's figure (PET slices with VOIs and ratios); it is referenced
    from ``result["figures"]`` by SHA-256 and returned in ``files`` (figures are views of the
    numbers: the reproducibility check ignores them).
    """
    from lutarterial.imaging.compare import compare_studies
    from lutarterial.imaging.workflow import quantify_files

    iv_img, iv_lab, iv_m = quantify_files(iv_pet, iv_voi, names, series_uid=iv_series_uid)
    iah_img, iah_lab, iah_m = quantify_files(iah_pet, iah_voi, iah_names or names, series_uid=iah_series_uid)
    comp = compare_studies(iv_m, iah_m, iv_timing=iv_img.timing, iah_timing=iah_img.timing)
    from lutarterial.imaging.report import comparison_dict

    result = comparison_dict(comp)
    files: dict[str, bytes] = {}
    if png:
        from lutarterial.imaging.figure import render_png

        data = render_png([("IV", iv_img, iv_lab, iv_m), ("IAH", iah_img, iah_lab, iah_m)], comp)
        sha = hashlib.sha256(data).hexdigest()
        files[sha] = data
        result["figures"] = [{"sha256": sha, "caption": "IAH vs IV: PET slices with VOIs and per-VOI uptake ratios "
                                                       "(lutarterial.imaging figure)"}]
    result["per_voi"] = per_voi_table(result)
    inputs = {"iv_pet": path_digest(iv_pet), "iv_voi": path_digest(iv_voi), "iah_pet": path_digest(iah_pet),
              "iah_voi": path_digest(iah_voi)}
    if names:
        inputs["names"] = path_digest(names)
    if iah_names:
        inputs["iah_names"] = path_digest(iah_names)
    iv_study, iv_series = iv_img.meta.get("study_uid"), iv_img.meta.get("series_uid")
    if not iv_series:
        iv_study, iv_series = _series_uid_of(iv_pet)
    iah_study, iah_series = iah_img.meta.get("study_uid"), iah_img.meta.get("series_uid")
    if not iah_series:
        iah_study, iah_series = _series_uid_of(iah_pet)
    result["studies"] = [{"route": "iv", "study_instance_uid": iv_study, "series_instance_uid": iv_series,
                          "scan_time": iv_img.timing.scan_time.isoformat() if iv_img.timing and iv_img.timing.scan_time else None},
                         {"route": "iah", "study_instance_uid": iah_study, "series_instance_uid": iah_series,
                          "scan_time": iah_img.timing.scan_time.isoformat() if iah_img.timing and iah_img.timing.scan_time else None}]
    params = {"engine": "lutarterial.imaging.compare.compare_studies", "peak": True,
              "residual_subtraction": "within ten 68Ga half-lives", "names": "given" if names else "from segments"}
    uids = [u for u in (iv_series, iah_series) if u]
    return AnalysisOutcome(UPTAKE_KIND, _normalise(result), params, inputs, uids, iah_study, files=files)


def _read_spect(paths: Sequence[str | os.PathLike[str]], calibration: str | os.PathLike[str] | None,
                nuclide: str) -> list[Any]:
    from lutarterial.imaging.spect import CalibrationRegistry, read_spect_activity

    registry = CalibrationRegistry.from_csv(calibration) if calibration else CalibrationRegistry.packaged()
    imgs = []
    for p in paths:
        try:
            imgs.append(read_spect_activity(p, registry=registry, nuclide=nuclide))
        except NotFoundError as exc:
            msg = str(exc)
            if "SPECT calibration" in msg:
                from lutarterial.imaging.io import read_image

                im = read_image(p)
                when = im.acquisition_time.date().isoformat() if im.acquisition_time else "unknown date"
                raise InvalidInputError(
                    f"SPECT {Path(p).name}: camera {im.meta.get('model') or '?'} (site {im.meta.get('institution') or '?'}, "
                    f"collimator {im.meta.get('collimator') or '?'}) has no calibration valid on {when}; calibrate it "
                    f"for that date in the calibration registry ({msg})") from None
            raise
    return imgs


def spect_dosimetry_analysis(spect: Sequence[str | os.PathLike[str]], labels: str | os.PathLike[str],
                             names: str | os.PathLike[str] | None = None, *,
                             calibration: str | os.PathLike[str] | None = None,
                             prior_doses: Sequence[dict[str, Any]] = (), nuclide: str = "Lu-177",
                             voxel: bool = True, cycle: str = "IAH") -> AnalysisOutcome:
    """IAH-cycle 177Lu dosimetry measured on the SPECT time points (see the module docstring).

    ``prior_doses``: earlier cycles per VOI, ``{"voi", "cycle", "dose_gy", "teff_h"}`` (e.g. IV1-IV4),
    added to the cumulative sums checked against the limits.
    """
    import numpy as np

    from lutarterial.dosimetry.io import VoiTac
    from lutarterial.dosimetry.metrics import CycleDose
    from lutarterial.dosimetry.registration import resample_to
    from lutarterial.dosimetry.workflow import tac_dosimetry, voxel_dosimetry
    from lutarterial.imaging.io import read_labels

    if len(spect) < 2:
        raise InvalidInputError(f"SPECT dosimetry needs at least two time points, got {len(spect)}")
    imgs = _read_spect(spect, calibration, nuclide)
    points = []
    for p, im in zip(spect, imgs, strict=True):
        inj = im.timing.injection_time if im.timing is not None else None
        if inj is None or im.acquisition_time is None:
            raise InvalidInputError(f"SPECT {Path(p).name}: RadiopharmaceuticalStartDateTime or acquisition time "
                                    "missing; the time after administration cannot be known")
        points.append(((im.acquisition_time - inj).total_seconds() / 3600.0, inj, p, im))
    points.sort(key=lambda t: t[0])
    admins = {t[1] for t in points}
    if len(admins) > 1:
        raise InvalidInputError("the SPECT time points name different administrations: "
                                + ", ".join(sorted(a.isoformat() for a in admins)))
    times = [round(t[0], 6) for t in points]
    if any(b - a <= 0 for a, b in zip(times, times[1:], strict=False)):
        raise InvalidInputError(f"two SPECT time points at the same time after administration: {times}")
    ref = points[0][3]
    g0 = ref.geometry
    maps = []
    for _, _, _, im in points:
        arr = np.asarray(im.array, float)
        maps.append(arr if im.geometry.same_grid(g0) else resample_to(im.array, im.geometry, g0, None))
    lm = read_labels(labels, ref, names=names)
    masks = {v.spec.name: v.full(g0.shape) for v in lm.vois}
    kinds = {v.spec.name: str(getattr(v.spec.kind, "value", v.spec.kind)) for v in lm.vois}
    vml = g0.voxel_volume_ml
    # organs at risk (kidney, spleen, marrow, healthy liver) without their lesion voxels, by the
    # imaging rule itself (docs/imaging.md "Background VOIs"; issue 10): a kidney's activity, mass
    # and absorbed dose never include an overlapping lesion's
    from lutarterial.imaging.metrics import measured_vois

    notes: list[str] = []
    organ_masks = {v.spec.name: v.full(g0.shape) for v in measured_vois(
        lm.vois, g0.shape, vml, notes, metrics="time-activity curve, mass, TIA and absorbed dose")}
    tacs = []
    tac_rows = []
    for name, m in organ_masks.items():
        n = int(m.sum())
        if n == 0:
            continue
        acts = tuple(float(a[m].sum() * vml / 1e6) for a in maps)
        kind = "lesion" if kinds[name] in ("lesion", "extrahepatic") else "organ"
        mass = n * vml * TISSUE_DENSITY_G_ML
        tacs.append(VoiTac(voi=name, cycle=cycle, time_h=tuple(times), activity_mbq=acts, mass_g=mass, kind=kind))
        tac_rows.append({"region": name, "voi": name, "kind": kinds[name], "time_h": list(times), "activity_mbq": list(acts),
                         "volume_ml": n * vml, "mass_g": mass})
    prior = [CycleDose(str(d["cycle"]), str(d["voi"]), float(d["dose_gy"]),
                       None if d.get("teff_h") is None else float(d["teff_h"])) for d in prior_doses]
    organ = tac_dosimetry(tacs, nuclide=nuclide, prior_doses=prior)
    organ.pop("_fits", None)
    result: dict[str, Any] = {"nuclide": organ["nuclide"], "cycle": cycle, "administration": points[0][1].isoformat(),
                              "injected_mbq": (ref.timing.injected_activity_bq / 1e6
                                               if ref.timing and ref.timing.injected_activity_bq else None),
                              "time_h": times, "tacs": tac_rows, "vois": organ["vois"],
                              "cumulative": organ["cumulative"],
                              "activity_calibration": [dict((im.meta or {}).get("calibration") or {})
                                                       for _, _, _, im in points],
                              "prior_cycles": sorted({d.cycle for d in prior})}
    if notes:
        result["notes"] = notes
    if voxel:
        voxel_mm = (g0.spacing_mm[2], g0.spacing_mm[1], g0.spacing_mm[0])
        _, vres = voxel_dosimetry(maps, times, voxel_mm, masks, nuclide, kinds=kinds)
        result["voxel"] = vres
    inputs = {f"spect_{int(round(t))}h": path_digest(p) for t, _, p, _ in points}
    inputs["labels"] = path_digest(labels)
    if names:
        inputs["names"] = path_digest(names)
    if calibration:
        inputs["calibration"] = path_digest(calibration)
    uids = []
    study = None
    for _, _, p, im in points:
        s_uid = im.meta.get("series_uid")
        st = im.meta.get("study_uid")
        if not s_uid:
            st, s_uid = _series_uid_of(p)
        if s_uid:
            uids.append(s_uid)
        study = study or st
    params = {"engine": "lutarterial.dosimetry.workflow.tac_dosimetry + voxel_dosimetry", "nuclide": nuclide,
              "model": "auto (AICc)", "mass": f"VOI volume x {TISSUE_DENSITY_G_ML} g/mL", "voxel": voxel,
              "calibration": "file" if calibration else "packaged registry",
              "prior_doses": [dict(d) for d in prior_doses]}
    return AnalysisOutcome(DOSIMETRY_KIND, _normalise(result), _normalise(params), inputs, uids, study)


# --- storage (client side) --------------------------------------------------------------------


@dataclass(frozen=True)
class StoredAnalysis:
    kind: str
    id: int
    status: str  # new, reproduced, superseding, not_reproduced
    superseded_id: int | None = None
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "id": self.id, "status": self.status, "superseded_id": self.superseded_id,
                "message": self.message}


def _what_changed(old: Any, o: AnalysisOutcome) -> str:
    parts = []
    if old.software_version != o.software_version:
        parts.append(f"engine {old.software_version} -> {o.software_version}")
    changed = sorted(k for k in set(old.input_hashes or {}) | set(o.input_hashes)
                     if (old.input_hashes or {}).get(k) != o.input_hashes.get(k))
    if changed:
        parts.append("inputs changed: " + ", ".join(changed))
    if _canonical(old.parameters or {}) != _canonical(o.parameters):
        keys = sorted(k for k in set(old.parameters or {}) | set(o.parameters)
                      if (old.parameters or {}).get(k) != o.parameters.get(k))
        parts.append("parameters changed: " + ", ".join(keys))
    return "; ".join(parts)


def _numbers(result: Any) -> str:
    """Canonical JSON of a result without its figure references (what "reproduced" compares)."""
    return _canonical({k: v for k, v in (result or {}).items() if k != "figures"})


def write_figures(outcomes: Sequence[AnalysisOutcome], figures_dir: str | os.PathLike[str]) -> None:
    """Write the outcomes' figure PNGs as ``<figures_dir>/<sha256>.png`` (the web app serves them)."""
    d = Path(figures_dir)
    for o in outcomes:
        for sha, data in o.files.items():
            d.mkdir(parents=True, exist_ok=True)
            path = d / f"{sha}.png"
            if not path.exists():
                path.write_bytes(data)


def store_outcomes(session: Any, actor: Any, participant: int | str, outcomes: Sequence[AnalysisOutcome], *,
                   reason: str, figures_dir: str | os.PathLike[str] | None = None) -> list[StoredAnalysis]:
    """Store outcomes for a participant (reproduced / new / superseding), all in the caller's transaction.

    ``figures_dir``: where the outcomes' figure PNGs go (by hash; default: not written)."""
    if figures_dir is not None:
        write_figures(outcomes, figures_dir)
    from sqlalchemy import select

    from lutarterial.registry.audit import audited
    from lutarterial.registry.models import DosimetryAnalysis, ImagingAnalysis
    from lutarterial.registry.services import attach_dosimetry_analysis, attach_imaging_analysis
    from lutarterial.registry.services._common import load_participant

    p = load_participant(session, actor, participant)
    out: list[StoredAnalysis] = []
    imaging_id: int | None = None
    for o in sorted(outcomes, key=lambda o: o.kind != UPTAKE_KIND):
        model = ImagingAnalysis if o.kind == UPTAKE_KIND else DosimetryAnalysis
        current = session.scalars(select(model).where(model.participant_id == p.id, model.kind == o.kind,
                                                      model.superseded_by_id.is_(None))
                                  .order_by(model.id.desc())).first()
        same_inputs = (current is not None and current.software_version == o.software_version
                       and (current.input_hashes or {}) == o.input_hashes
                       and _canonical(current.parameters or {}) == _canonical(o.parameters))
        if same_inputs and _numbers(current.result) == _numbers(o.result):
            from lutarterial.registry.models import utcnow

            with audited(session, actor, f"{reason} (reproduced: identical numbers)"):
                current.reproduced_at = utcnow()
            out.append(StoredAnalysis(o.kind, current.id, "reproduced", None,
                                      f"reproduced analysis {current.id}: same inputs, engine and parameters, "
                                      "identical numbers"))
            if model is ImagingAnalysis:
                imaging_id = current.id
            continue
        kw: dict[str, Any] = dict(kind=o.kind, result=o.result, reason=reason,
                                  study_instance_uid=o.study_instance_uid,
                                  series_instance_uids=list(o.series_instance_uids), input_hashes=o.input_hashes,
                                  parameters=o.parameters, software_version=o.software_version[:50])
        if model is ImagingAnalysis:
            row = attach_imaging_analysis(session, actor, p.id, **kw)
            imaging_id = row.id
        else:
            row = attach_dosimetry_analysis(session, actor, p.id, imaging_analysis_id=imaging_id, **kw)
        if current is None:
            out.append(StoredAnalysis(o.kind, row.id, "new"))
            continue
        if same_inputs:
            status, why = "not_reproduced", "same inputs, engine and parameters gave different numbers"
        else:
            status, why = "superseding", _what_changed(current, o) or "re-run"
        with audited(session, actor, f"{reason} (supersedes analysis {current.id})"):
            current.superseded_by_id = row.id
            current.superseded_reason = f"{reason} — {why}"[:2000]
        out.append(StoredAnalysis(o.kind, row.id, status, current.id, why))
    return out


def error_text(exc: BaseException) -> str:
    """A one-line message for a failed analysis (engine messages as they are, others with their type)."""
    if isinstance(exc, LutarterialError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


"""Import a participant's imaging files into the store and the registry; list and materialise series.

``import_study(session, actor, participant, paths, store=..., reason=...)`` stages the files
(:mod:`.store`: limits, zip checks), reads every header (pixel data not loaded), refuses the
import as a whole when

* a file is neither DICOM nor a NIfTI label map (``.nii``/``.nii.gz``) nor a ``names.json`` next
  to one (all such files are listed);
* a stored file with the same SOPInstanceUID has different content (named);
* a study belongs to another participant, or the PatientID / PatientName / birth date (compared as
  SHA-256 digests) contradict each other or the participant's other studies (the field is named);

and otherwise writes studies, series and files in one audited transaction. Identical files are
recognised by their SOPInstanceUID + digest and change nothing (a re-import reports
``unchanged``).

Route (``iv``/``iah``) per PT/NM series: ``route`` if given; else the kind of the linked
``visit``; else the participant's visit on the same day (PET: ``pet_after_iv``/``pet_after_iah``;
SPECT: the cycle whose date is the administration date). SEG, RTSTRUCT, CT and label maps take the
route of the images of their study.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import os
import struct
import tempfile
import warnings
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from lutarterial.errors import InvalidInputError
from lutarterial.registry.access import Actor, Permission, require
from lutarterial.registry.audit import audited
from lutarterial.registry.models import ImagingFile, ImagingSeries, ImagingStudy, Participant, Visit, VisitKind
from lutarterial.registry.services._common import load_participant
from lutarterial.workflows.store import ContentStore, ImportLimits, StagedFile, stage_paths, stage_zip

__all__ = ["ImportReport", "import_study", "list_studies", "series_rows", "materialise_series", "series_dict",
           "IMAGE_MODALITIES", "VOI_MODALITIES"]

IMAGE_MODALITIES = ("PT", "NM")
VOI_MODALITIES = ("SEG", "RTSTRUCT", "LABELS")
_IGNORED = {"DICOMDIR"}


@dataclass
class ImportReport:
    """What an import did (``--json`` document of ``study import``)."""

    participant: str
    studies: list[dict[str, Any]] = field(default_factory=list)
    series: list[dict[str, Any]] = field(default_factory=list)
    files_new: int = 0
    files_unchanged: int = 0
    bytes_new: int = 0
    ignored: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return self.files_new > 0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["changed"] = self.changed
        return d


@dataclass
class _Header:
    staged: StagedFile
    kind: str  # dicom, nifti, names
    modality: str = ""
    study_uid: str = ""
    series_uid: str = ""
    sop_uid: str | None = None
    for_uid: str | None = None
    acquisition: dt.datetime | None = None
    study_date: dt.date | None = None
    study_description: str | None = None
    series_description: str | None = None
    radiopharmaceutical: str | None = None
    nuclide: str | None = None
    injected_mbq: float | None = None
    injection: dt.datetime | None = None
    institution: str | None = None
    camera: str | None = None
    patient: dict[str, str | None] = field(default_factory=dict)


def _digest_text(value: Any) -> str | None:
    text = str(value or "").strip().upper()
    return hashlib.sha256(text.encode()).hexdigest() if text else None


def _read_dicom(s: StagedFile) -> _Header | None:
    from lutarterial.imaging.dicom_series import _dt, dcmread_tolerant, parse_dt

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = dcmread_tolerant(s.path, stop_before_pixels=True)
    except Exception:  # noqa: BLE001 - anything pydicom cannot read is "not DICOM"
        return None
    series_uid = str(ds.get("SeriesInstanceUID", "") or "")
    study_uid = str(ds.get("StudyInstanceUID", "") or "")
    if not series_uid or not study_uid:
        return None
    h = _Header(s, "dicom", modality=str(ds.get("Modality", "") or "OT").upper(), study_uid=study_uid,
                series_uid=series_uid, sop_uid=str(ds.get("SOPInstanceUID", "") or "") or None)
    h.for_uid = str(ds.get("FrameOfReferenceUID", "") or "") or None
    if h.for_uid is None and "ReferencedFrameOfReferenceSequence" in ds and len(ds.ReferencedFrameOfReferenceSequence):
        h.for_uid = str(ds.ReferencedFrameOfReferenceSequence[0].get("FrameOfReferenceUID", "") or "") or None
    try:
        h.acquisition = (parse_dt(ds.get("AcquisitionDateTime")) or _dt(ds, "AcquisitionDate", "AcquisitionTime")
                         or _dt(ds, "SeriesDate", "SeriesTime"))
    except Exception:  # noqa: BLE001 - a malformed time is not fatal for the import
        h.acquisition = None
    from lutarterial.imaging.dicom_series import parse_da

    try:
        h.study_date = parse_da(ds.get("StudyDate"))
    except Exception:  # noqa: BLE001
        h.study_date = None
    h.study_description = str(ds.get("StudyDescription", "") or "")[:200] or None
    h.series_description = str(ds.get("SeriesDescription", "") or "")[:200] or None
    h.institution = str(ds.get("InstitutionName", "") or "")[:100] or None
    h.camera = str(ds.get("ManufacturerModelName", "") or "")[:100] or None
    seq = ds.get("RadiopharmaceuticalInformationSequence")
    if seq:
        ri = seq[0]
        h.radiopharmaceutical = str(ri.get("Radiopharmaceutical", "") or "")[:100] or None
        code = ri.get("RadionuclideCodeSequence")
        if code:
            h.nuclide = str(code[0].get("CodeMeaning", "") or "")[:50] or None
        try:
            dose = float(ri.get("RadionuclideTotalDose") or 0)
            h.injected_mbq = round(dose / 1e6, 6) if dose > 0 else None
        except (TypeError, ValueError):
            h.injected_mbq = None
        try:
            h.injection = parse_dt(ri.get("RadiopharmaceuticalStartDateTime"))
            if h.injection is None and ri.get("RadiopharmaceuticalStartTime") and h.modality == "PT":
                # PET: same day as the series (a 68Ga scan follows the injection within hours)
                from lutarterial.imaging.dicom_series import parse_da, parse_tm

                d, t = parse_da(ds.get("SeriesDate")), parse_tm(ri.get("RadiopharmaceuticalStartTime"))
                h.injection = dt.datetime.combine(d, t) if d and t else None
        except Exception:  # noqa: BLE001
            h.injection = None
        if h.injection is not None and h.injection.tzinfo is not None:
            h.injection = h.injection.replace(tzinfo=None)
    h.patient = {"PatientID": _digest_text(ds.get("PatientID")), "PatientName": _digest_text(ds.get("PatientName")),
                 "PatientBirthDate": _digest_text(ds.get("PatientBirthDate"))}
    return h


def _is_nifti(s: StagedFile) -> bool:
    name = s.name.lower()
    if not (name.endswith(".nii") or name.endswith(".nii.gz")):
        return False
    try:
        with (gzip.open(s.path, "rb") if name.endswith(".gz") else s.path.open("rb")) as f:
            head = f.read(4)
    except OSError:
        return False
    return len(head) == 4 and (struct.unpack("<i", head)[0] in (348, 540) or struct.unpack(">i", head)[0] in (348, 540))


def _classify(staged: list[StagedFile]) -> tuple[list[_Header], list[str], list[str]]:
    headers: list[_Header] = []
    refused: list[str] = []
    ignored: list[str] = []
    for s in staged:
        base = Path(s.name).name
        if base in _IGNORED:
            ignored.append(s.name)
            continue
        if _is_nifti(s):
            headers.append(_Header(s, "nifti", modality="LABELS"))
            continue
        if base.lower() == "names.json":
            try:
                doc = json.loads(s.path.read_text(encoding="utf-8"))
                if not isinstance(doc, dict):
                    raise ValueError
            except (ValueError, UnicodeDecodeError):
                refused.append(f"{s.name} (names.json is not a JSON object)")
                continue
            headers.append(_Header(s, "names", modality="NAMES"))
            continue
        h = _read_dicom(s)
        if h is None:
            refused.append(s.name)
        else:
            headers.append(h)
    return headers, refused, ignored


def _route_of_visit(kind: str) -> str | None:
    if kind in (VisitKind.IV_CYCLE.value, VisitKind.PET_AFTER_IV.value):
        return "iv"
    if kind in (VisitKind.IAH_CYCLE.value, VisitKind.PET_AFTER_IAH.value):
        return "iah"
    return None


def _match_visit(visits: list[Visit], modality: str, acquisition: dt.datetime | None,
                 injection: dt.datetime | None) -> Visit | None:
    """The participant's visit on the day of this series (PET: its PET visit; SPECT: its cycle)."""
    if modality == "PT" and acquisition is not None:
        kinds = (VisitKind.PET_AFTER_IV.value, VisitKind.PET_AFTER_IAH.value)
        day = acquisition.date()
    elif modality == "NM" and (injection or acquisition) is not None:
        kinds = (VisitKind.IV_CYCLE.value, VisitKind.IAH_CYCLE.value)
        day = (injection or acquisition).date()  # type: ignore[union-attr]
    else:
        return None
    found = [v for v in visits if v.kind in kinds and (v.visit_date or v.planned_date) == day]
    return found[0] if len(found) == 1 else None


def _series_digest(hashes: list[str]) -> str:
    h = hashlib.sha256()
    for d in sorted(hashes):
        h.update(d.encode())
    return h.hexdigest()


def _nifti_uid(sha: str) -> str:
    return f"2.25.{int(sha[:30], 16)}"


def import_study(session: Session, actor: Actor, participant: int | str, paths: list[str | os.PathLike[str]], *,
                 store: str | os.PathLike[str], reason: str, route: str | None = None, visit_id: int | None = None,
                 limits: ImportLimits | None = None, zip_stream: Any = None) -> ImportReport:
    """Import files (folders, files, zips; or an open zip ``zip_stream``) for ``participant``.

    All checks happen before anything is written; the registry rows are written in one audited
    unit of work (the caller's session commits). Files are moved into the content-addressed
    store only after the checks passed.
    """
    require(actor, Permission.IMAGING_WRITE)
    p = load_participant(session, actor, participant)
    if route is not None and route not in ("iv", "iah"):
        raise InvalidInputError(f"route {route!r}: choose iv or iah")
    visits = list(session.scalars(select(Visit).where(Visit.participant_id == p.id)))
    visit = None
    if visit_id is not None:
        visit = next((v for v in visits if v.id == int(visit_id)), None)
        if visit is None:
            raise InvalidInputError(f"visit {visit_id} is not a visit of {p.trial_number}")
        vroute = _route_of_visit(visit.kind)
        if route and vroute and vroute != route:
            raise InvalidInputError(f"--route {route} contradicts visit {visit_id} ({visit.kind})")
        route = route or vroute
    cs = ContentStore(store)
    limits = limits or ImportLimits.from_env()
    staged = stage_zip(zip_stream, cs, limits) if zip_stream is not None else stage_paths(list(paths), cs, limits)
    try:
        if not staged:
            raise InvalidInputError("nothing to import: no files found")
        return _import_staged(session, actor, p, staged, cs, reason, route, visit, visits)
    finally:
        for s in staged:
            s.path.unlink(missing_ok=True)


def _import_staged(session: Session, actor: Actor, p: Participant, staged: list[StagedFile], cs: ContentStore,
                   reason: str, route: str | None, visit: Visit | None, visits: list[Visit]) -> ImportReport:
    headers, refused, ignored = _classify(staged)
    if refused:
        shown = ", ".join(refused[:10]) + (f" and {len(refused) - 10} more" if len(refused) > 10 else "")
        raise InvalidInputError(f"import refused: {len(refused)} file(s) are neither DICOM nor a NIfTI label map "
                                f"nor names.json: {shown}")
    dicoms = [h for h in headers if h.kind == "dicom"]
    if not dicoms:
        raise InvalidInputError("import refused: no DICOM file (a NIfTI label map needs its images in the same import)")
    # identity: consistent within the import and with the participant's other studies
    report = ImportReport(p.trial_number, ignored=ignored)
    existing_studies = list(session.scalars(select(ImagingStudy).where(ImagingStudy.participant_id == p.id)))
    cols = {"PatientID": "patient_id_sha256", "PatientName": "patient_name_sha256",
            "PatientBirthDate": "birth_date_sha256"}
    for tag, col in cols.items():
        values: dict[str, str] = {}
        for h in dicoms:
            v = h.patient.get(tag)
            if v:
                values.setdefault(v, h.study_uid)
        if len(values) > 1:
            raise InvalidInputError(f"import refused: the files carry {len(values)} different {tag} values "
                                    f"(studies {', '.join(sorted(set(values.values())))}); import one patient at a time")
        for st in existing_studies:
            have = getattr(st, col)
            if values and have and have not in values:
                new_uid = next(iter(values.values()))
                raise InvalidInputError(f"import refused: {tag} of study {new_uid} differs from {p.trial_number}'s "
                                        f"study {st.study_instance_uid} already imported")
    # files: SOPInstanceUID conflicts and duplicates within the import
    seen: dict[str, str] = {}
    for h in dicoms:
        if h.sop_uid:
            if h.sop_uid in seen and seen[h.sop_uid] != h.staged.sha256:
                raise InvalidInputError(f"import refused: two different files with SOPInstanceUID {h.sop_uid} "
                                        f"in the import ({h.staged.name})")
            seen[h.sop_uid] = h.staged.sha256
    stored = {f.sop_instance_uid: f for f in session.scalars(
        select(ImagingFile).where(ImagingFile.sop_instance_uid.in_(list(seen))))} if seen else {}
    for h in dicoms:
        f = stored.get(h.sop_uid)
        if f is not None and f.sha256 != h.staged.sha256:
            raise InvalidInputError(f"import refused: {h.staged.name} has SOPInstanceUID {h.sop_uid}, already stored "
                                    f"with different content (sha256 {f.sha256[:12]}…, from {f.original_name}); "
                                    "stored files are never replaced")
        if f is not None and f.participant_id != p.id:
            raise InvalidInputError(f"import refused: SOPInstanceUID {h.sop_uid} is stored for another participant")
    study_uids = sorted({h.study_uid for h in dicoms})
    other = session.scalars(select(ImagingStudy).where(ImagingStudy.study_instance_uid.in_(study_uids),
                                                       ImagingStudy.participant_id != p.id)).first()
    if other is not None:
        raise InvalidInputError(f"import refused: study {other.study_instance_uid} belongs to another participant")
    # group DICOM by series; NIfTI label maps (+ names.json of the same folder) by file
    by_series: dict[str, list[_Header]] = defaultdict(list)
    for h in dicoms:
        by_series[h.series_uid].append(h)
    names_by_dir = {h.staged.source_dir: h for h in headers if h.kind == "names"}
    label_series: list[tuple[str, list[_Header], str]] = []
    used_names: set[str] = set()
    for h in headers:
        if h.kind != "nifti":
            continue
        near = [d for d in dicoms if d.staged.source_dir == h.staged.source_dir
                or d.staged.source_dir.startswith(h.staged.source_dir + "/") or not h.staged.source_dir]
        near = [d for d in near if d.modality in IMAGE_MODALITIES] or near or dicoms
        ref = min(near, key=lambda d: (d.acquisition or dt.datetime.max, d.series_uid))
        files = [h]
        nm = names_by_dir.get(h.staged.source_dir)
        if nm is not None:
            files.append(nm)
            used_names.add(h.staged.source_dir)
        label_series.append((_nifti_uid(h.staged.sha256), files, ref.series_uid))
    for d, nm in names_by_dir.items():
        if d not in used_names:
            # a names.json next to a SEG/RTSTRUCT belongs to that VOI series
            segs = [h for h in dicoms if h.staged.source_dir == d and h.modality in ("SEG", "RTSTRUCT")]
            if len(segs) >= 1 and len({s.series_uid for s in segs}) == 1:
                by_series[segs[0].series_uid].append(nm)
            else:
                report.ignored.append(f"{nm.staged.name} (no label map or SEG/RTSTRUCT in its folder)")
    with audited(session, actor, reason):
        study_rows: dict[str, ImagingStudy] = {s.study_instance_uid: s for s in session.scalars(
            select(ImagingStudy).where(ImagingStudy.study_instance_uid.in_(study_uids)))}
        for uid in study_uids:
            hs = [h for h in dicoms if h.study_uid == uid]
            if uid in study_rows:
                report.studies.append({"study_instance_uid": uid, "status": "existing"})
                continue
            first = hs[0]
            row = ImagingStudy(participant_id=p.id, study_instance_uid=uid, study_date=first.study_date,
                               description=first.study_description,
                               patient_id_sha256=first.patient.get("PatientID"),
                               patient_name_sha256=first.patient.get("PatientName"),
                               birth_date_sha256=first.patient.get("PatientBirthDate"))
            session.add(row)
            study_rows[uid] = row
            report.studies.append({"study_instance_uid": uid, "status": "new"})
        session.flush()
        # route per study from its images
        study_route: dict[str, tuple[str | None, Visit | None]] = {}
        plan: list[tuple[str, list[_Header], str | None]] = [(uid, hs, None) for uid, hs in by_series.items()]
        plan += [(uid, files, ref) for uid, files, ref in label_series]
        meta_rows: dict[str, dict[str, Any]] = {}
        for uid, hs, ref in plan:
            if ref is not None:
                continue
            h0 = min((h for h in hs if h.kind == "dicom"), key=lambda h: (h.acquisition or dt.datetime.max))
            acq = min((h.acquisition for h in hs if h.acquisition), default=None)
            v = visit or (_match_visit(visits, h0.modality, acq, h0.injection) if not route else None)
            r = route or (_route_of_visit(v.kind) if v is not None else None)
            if h0.modality in IMAGE_MODALITIES:
                study_route.setdefault(h0.study_uid, (r, v))
            meta_rows[uid] = {"h0": h0, "acq": acq, "route": r, "visit": v}
        for uid, hs, ref in plan:
            if ref is not None:
                h0 = next(d for d in dicoms if d.series_uid == ref)
                acq, (r, v) = None, study_route.get(h0.study_uid, (route, visit))
                modality = "LABELS"
            else:
                m = meta_rows[uid]
                h0, acq = m["h0"], m["acq"]
                r, v = m["route"], m["visit"]
                if h0.modality not in IMAGE_MODALITIES:
                    r, v = study_route.get(h0.study_uid, (r, v))
                modality = h0.modality
            t_after = None
            if acq is not None and h0.injection is not None and modality in IMAGE_MODALITIES:
                t_after = round((acq - h0.injection).total_seconds() / 3600.0, 4)
            series = session.scalars(select(ImagingSeries).where(ImagingSeries.series_instance_uid == uid)).first()
            new_files = []
            for h in hs:
                exists = (stored.get(h.sop_uid) if h.sop_uid else None)
                if exists is None and series is not None and h.sop_uid is None:
                    exists = session.scalars(select(ImagingFile).where(ImagingFile.series_id == series.id,
                                                                       ImagingFile.sha256 == h.staged.sha256)).first()
                if exists is not None:
                    report.files_unchanged += 1
                else:
                    new_files.append(h)
            status = "unchanged"
            if series is None:
                series = ImagingSeries(
                    study_id=study_rows[h0.study_uid].id, participant_id=p.id, visit_id=v.id if v else None,
                    series_instance_uid=uid, modality=modality,
                    description=(h0.series_description if modality != "LABELS" else f"label map {hs[0].staged.name}"),
                    frame_of_reference_uid=h0.for_uid, acquisition_time=acq.isoformat() if acq else None,
                    radiopharmaceutical=h0.radiopharmaceutical if modality in IMAGE_MODALITIES else None,
                    nuclide=h0.nuclide if modality in IMAGE_MODALITIES else None,
                    injected_mbq=h0.injected_mbq if modality in IMAGE_MODALITIES else None,
                    injection_time=(h0.injection.isoformat() if h0.injection and modality in IMAGE_MODALITIES
                                    else None),
                    route=r, time_after_admin_h=t_after, institution=h0.institution, camera=h0.camera,
                    n_files=0, content_sha256=_series_digest([]))
                session.add(series)
                session.flush()
                status = "new"
            elif new_files:
                status = "extended"
            for h in new_files:
                rel = cs.put(h.staged.path, h.staged.sha256)
                session.add(ImagingFile(series_id=series.id, participant_id=p.id, sop_instance_uid=h.sop_uid,
                                        sha256=h.staged.sha256, size_bytes=h.staged.size, store_path=rel,
                                        original_name=h.staged.name[-300:]))
                report.files_new += 1
                report.bytes_new += h.staged.size
            if new_files:
                session.flush()
                digests = list(session.scalars(select(ImagingFile.sha256).where(ImagingFile.series_id == series.id)))
                series.n_files = len(digests)
                series.content_sha256 = _series_digest(digests)
            report.series.append({**series_dict(series), "status": status, "files_new": len(new_files)})
    return report


def series_dict(s: ImagingSeries) -> dict[str, Any]:
    return {"id": s.id, "series_instance_uid": s.series_instance_uid, "modality": s.modality,
            "description": s.description, "acquisition_time": s.acquisition_time, "route": s.route,
            "visit_id": s.visit_id, "time_after_admin_h": s.time_after_admin_h,
            "radiopharmaceutical": s.radiopharmaceutical, "nuclide": s.nuclide, "injected_mbq": s.injected_mbq,
            "injection_time": s.injection_time, "frame_of_reference_uid": s.frame_of_reference_uid,
            "institution": s.institution, "camera": s.camera, "n_files": s.n_files,
            "content_sha256": s.content_sha256}


def series_rows(session: Session, actor: Actor, participant: int | str) -> list[ImagingSeries]:
    p = load_participant(session, actor, participant)
    return list(session.scalars(select(ImagingSeries).where(ImagingSeries.participant_id == p.id)
                                .order_by(ImagingSeries.acquisition_time, ImagingSeries.id)))


def list_studies(session: Session, actor: Actor, participant: int | str) -> list[dict[str, Any]]:
    """Studies of a participant with their series (what ``study list`` and the API show)."""
    p = load_participant(session, actor, participant)
    studies = list(session.scalars(select(ImagingStudy).where(ImagingStudy.participant_id == p.id)
                                   .order_by(ImagingStudy.study_date, ImagingStudy.id)))
    series = series_rows(session, actor, p.id)
    out = []
    for st in studies:
        out.append({"id": st.id, "study_instance_uid": st.study_instance_uid,
                    "study_date": st.study_date.isoformat() if st.study_date else None,
                    "description": st.description,
                    "series": [series_dict(s) for s in series if s.study_id == st.id]})
    return out


def materialise_series(session: Session, series: ImagingSeries, store: str | os.PathLike[str],
                       into: str | os.PathLike[str] | None = None) -> Path:
    """A folder of links to the series' stored files (``<sha>.dcm``; label maps keep their name).

    Engines read folders; the store is flat by digest, so each analysis gets a view. For a label
    map the returned path is the NIfTI file itself (its names.json sits next to it).
    """
    cs = ContentStore(store)
    base = Path(into) if into else Path(tempfile.mkdtemp(prefix="series-", dir=cs.tmp_dir()))
    d = base / series.series_instance_uid
    d.mkdir(parents=True, exist_ok=True)
    files = list(session.scalars(select(ImagingFile).where(ImagingFile.series_id == series.id)
                                 .order_by(ImagingFile.sha256)))
    main: Path | None = None
    for f in files:
        src = cs.path(f.store_path)
        low = f.original_name.lower()
        if low.endswith(".nii.gz") or low.endswith(".nii"):
            name = "labels.nii.gz" if low.endswith(".gz") else "labels.nii"
        elif Path(low).name == "names.json":
            name = "names.json"
        else:
            name = f"{f.sha256}.dcm"
        target = d / name
        if not target.exists():
            try:
                os.symlink(src.resolve(), target)
            except OSError:
                import shutil

                shutil.copyfile(src, target)
        if name.startswith("labels."):
            main = target
    if series.modality == "LABELS" and main is not None:
        return main
    if series.modality in ("SEG", "RTSTRUCT"):
        dcms = sorted(d.glob("*.dcm"))
        if len(dcms) == 1:
            return dcms[0]
    return d

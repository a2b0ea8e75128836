"""REST API of issue 11: a participant's imaging studies, stored analyses and background analysis jobs.

``GET/POST /api/participants/{tn}/studies`` (POST: multipart ``file`` = a zip, or ``folder`` = a
folder under the site's import directory ``$LUTARTERIAL_IMPORT_DIR/<site code>/``; fields
``reason``, optional ``route`` and ``visit_id``), ``GET .../imaging-analyses`` and
``.../dosimetry-analyses`` (stored results, current and superseded, with the per-VOI table),
``POST .../analyses/run`` (plans synchronously, so an ambiguous choice is a 400 naming the
candidates, then runs in the server's job pool: 202 with the job), ``GET /api/jobs/{id}``.
Writes need the session's CSRF token like every other write, and a reason.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from pydantic import BaseModel, Field

from lutarterial.errors import InvalidInputError
from lutarterial.web.backend import WebUser
from lutarterial.web.deps import backend_of, current_user, require_csrf

__all__ = ["router", "import_folders", "store_of", "runner_of"]

router = APIRouter(prefix="/api", tags=["studies"])
W = [Depends(require_csrf)]
_R = {400: {"description": "invalid input (the message says what to fix)"},
      401: {"description": "not signed in"}, 403: {"description": "role or site does not allow it"},
      404: {"description": "no such participant or job"}}


class UploadTooLarge(InvalidInputError):
    http_status = 413


def store_of(request: Request) -> Path:
    env = os.environ.get("LUTARTERIAL_STORE")
    return Path(env) if env else Path(request.app.state.data_dir) / "store"


def runner_of(request: Request) -> Any:
    """The app's job runner (created on first use; jobs orphaned by a restart are marked failed)."""
    from lutarterial.workflows.jobs import JobRunner

    runner = getattr(request.app.state, "analysis_jobs", None)
    if runner is None:
        runner = JobRunner(backend_of(request).registry, store_of(request),
                           figures_dir=Path(request.app.state.data_dir) / "figures")
        runner.reap_orphans()
        request.app.state.analysis_jobs = runner
    return runner


def _import_root(site_code: str) -> Path | None:
    root = os.environ.get("LUTARTERIAL_IMPORT_DIR")
    return (Path(root) / site_code) if root else None


def import_folders(site_code: str) -> list[str]:
    """Folders offered for import at a site (first two levels under its import directory)."""
    base = _import_root(site_code)
    if base is None or not base.is_dir():
        return []
    out = []
    for p in sorted(base.iterdir()):
        if p.is_dir():
            out.append(p.name)
            out.extend(f"{p.name}/{q.name}" for q in sorted(p.iterdir()) if q.is_dir())
    return out


def _participant_site(request: Request, user: WebUser, tn: str) -> tuple[str, str]:
    from lutarterial.registry.services._common import load_participant

    with backend_of(request).read() as s:
        p = load_participant(s, user.actor, tn)
        code = backend_of(request).site_map(s)[p.site_id][0]
        return p.trial_number, code


@router.get("/participants/{tn}/studies", responses=_R)
def studies(request: Request, tn: str, user: WebUser = Depends(current_user)) -> dict[str, Any]:
    """Imported studies and their series (modality, date, route, time after administration, files)."""
    from lutarterial.workflows.studies import list_studies

    trial, site = _participant_site(request, user, tn)
    with backend_of(request).read() as s:
        return {"participant": trial, "studies": list_studies(s, user.actor, tn), "import_folders": import_folders(site)}


@router.post("/participants/{tn}/studies", status_code=201, dependencies=W,
             responses={**_R, 413: {"description": "upload larger than the import limit"}})
def import_studies(request: Request, tn: str, reason: str = Form(..., min_length=1, max_length=2000),
                   route: str | None = Form(None), visit_id: int | None = Form(None), folder: str | None = Form(None),
                   file: UploadFile | None = File(None), user: WebUser = Depends(current_user)) -> dict[str, Any]:
    """Import a zip (multipart ``file``) or a folder of the site's import directory."""
    from lutarterial.workflows.store import ImportLimits
    from lutarterial.workflows.studies import import_study

    limits = ImportLimits.from_env()
    trial, site = _participant_site(request, user, tn)
    route = route or None
    paths: list[str] = []
    stream = None
    if file is not None and file.filename:
        size = int(request.headers.get("content-length") or 0)
        if size > limits.max_total_bytes:
            raise UploadTooLarge(f"upload of {size} bytes exceeds the import limit of {limits.max_total_bytes} bytes")
        stream = file.file
    elif folder:
        base = _import_root(site)
        if base is None:
            raise InvalidInputError("no site import directory is configured (LUTARTERIAL_IMPORT_DIR)")
        target = (base / folder).resolve()
        if not target.is_dir() or not target.is_relative_to(base.resolve()):
            raise InvalidInputError(f"folder {folder!r} is not a folder of the {site} import directory")
        paths = [str(target)]
    else:
        raise InvalidInputError("send a zip as 'file' or choose a 'folder' of the site import directory")
    with backend_of(request).write() as s:
        rep = import_study(s, user.actor, trial, paths, store=store_of(request), reason=reason, route=route,
                           visit_id=visit_id, limits=limits, zip_stream=stream)
    return rep.to_dict()


def _analysis_dict(a: Any) -> dict[str, Any]:
    from lutarterial.workflows.analyse import per_voi_table

    res = a.result or {}
    d: dict[str, Any] = {"id": a.id, "kind": a.kind, "created_at": a.created_at.isoformat() if a.created_at else None,
                         "software_version": a.software_version, "current": a.superseded_by_id is None,
                         "superseded_by_id": a.superseded_by_id, "superseded_reason": a.superseded_reason,
                         "reproduced_at": a.reproduced_at.isoformat() if a.reproduced_at else None,
                         "series_instance_uids": list(a.series_instance_uids or []),
                         "input_hashes": dict(a.input_hashes or {}), "parameters": dict(a.parameters or {})}
    if "vois" in res and ("summary" in res or "per_voi" in res) and a.kind != "spect_iah_dosimetry":
        d["per_voi"] = res.get("per_voi") or per_voi_table(res)
        d["summary"] = res.get("summary")
    if a.kind == "spect_iah_dosimetry":
        vox = {v["voi"]: v for v in (res.get("voxel") or {}).get("vois", [])}
        d["per_voi"] = [{"voi": v["voi"], "kind": v.get("kind"), "model": v.get("model"), "teff_h": v.get("teff_h"),
                         "tia_mbq_h": v.get("tia_mbq_h"), "dose_gy": v.get("dose_gy"), "bed_gy": v.get("bed_gy"),
                         "voxel_mean_gy": (vox.get(v["voi"]) or {}).get("mean_gy"),
                         "voxel_d90_gy": (vox.get(v["voi"]) or {}).get("d90_gy")}
                        for v in res.get("vois", [])]
        d["cumulative"] = res.get("cumulative", [])
        d["time_h"] = res.get("time_h")
        d["imaging_analysis_id"] = getattr(a, "imaging_analysis_id", None)
    d["result"] = res
    return d


def _analyses(request: Request, user: WebUser, tn: str, dosimetry: bool) -> dict[str, Any]:
    from lutarterial.registry.services import list_analyses

    with backend_of(request).read() as s:
        rows = list_analyses(s, user.actor, tn, dosimetry=dosimetry)
        out = [_analysis_dict(a) for a in rows]
    out.sort(key=lambda d: (not d["current"], -d["id"]))
    return {"participant": tn.upper(), "analyses": out}


@router.get("/participants/{tn}/imaging-analyses", responses=_R)
def imaging_analyses(request: Request, tn: str, user: WebUser = Depends(current_user)) -> dict[str, Any]:
    """Stored imaging analyses (current first; superseded ones kept) with per-VOI IV, IAH and IAH/IV."""
    return _analyses(request, user, tn, False)


@router.get("/participants/{tn}/dosimetry-analyses", responses=_R)
def dosimetry_analyses(request: Request, tn: str, user: WebUser = Depends(current_user)) -> dict[str, Any]:
    """Stored dosimetry analyses (current first) with per-VOI kinetics, dose and cumulative checks."""
    return _analyses(request, user, tn, True)


class RunIn(BaseModel):
    reason: str = Field(min_length=1, max_length=2000, description="why (recorded in the audit trail)")
    iv_series: str | None = None
    iah_series: str | None = None
    spect_series: list[str] = Field(default_factory=list)
    only: str | None = Field(None, description="uptake or dosimetry (default: both)")


@router.post("/participants/{tn}/analyses/run", status_code=202, dependencies=W, responses=_R)
def run_analyses(request: Request, tn: str, body: RunIn, user: WebUser = Depends(current_user)) -> dict[str, Any]:
    """Start the participant's analyses as a background job (poll ``GET /api/jobs/{id}``)."""
    from lutarterial.registry.access import Permission, require
    from lutarterial.workflows.plan import plan_analyses

    if body.only not in (None, "uptake", "dosimetry"):
        raise InvalidInputError("only: uptake or dosimetry")
    require(user.actor, Permission.IMAGING_WRITE if body.only == "uptake" else Permission.DOSIMETRY_WRITE
            if body.only == "dosimetry" else Permission.IMAGING_WRITE)
    if body.only is None:
        require(user.actor, Permission.DOSIMETRY_WRITE)
    with backend_of(request).read() as s:
        plan = plan_analyses(s, user.actor, tn, iv_series=body.iv_series, iah_series=body.iah_series,
                             spect_series=body.spect_series, uptake=body.only != "dosimetry",
                             dosimetry=body.only != "uptake")
    job = runner_of(request).submit(user.actor, plan.participant, plan, reason=body.reason)
    job["plan"] = plan.to_dict()
    return job


@router.get("/jobs/{job_id}", responses=_R)
def job(request: Request, job_id: int, user: WebUser = Depends(current_user)) -> dict[str, Any]:
    """A job's status (queued, running, done, failed), progress 0-1, message and stored analysis ids."""
    from lutarterial.workflows.jobs import get_job

    with backend_of(request).read() as s:
        return get_job(s, user.actor, job_id)

"""Background analysis jobs of the web server; their state lives in the ``analysis_jobs`` table.

``JobRunner(registry, store)`` owns a small thread pool. :meth:`JobRunner.submit` writes a
``queued`` job (audited, with the plan as parameters) and runs it in the pool: ``running`` with
progress, then ``done`` with the stored analysis ids or ``failed`` with the engine's message.
Because the state is in the database, a page reload (or another server worker) reads it with
:func:`job_dict`. A job found ``queued``/``running`` that no live runner owns (the server was
restarted) is reported as failed by :meth:`JobRunner.reap_orphans` at start-up.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any

from sqlalchemy import select

from lutarterial.errors import LutarterialError
from lutarterial.registry.access import SYSTEM_ACTOR, Actor
from lutarterial.registry.audit import audited
from lutarterial.registry.models import AnalysisJob, utcnow
from lutarterial.registry.services._common import load_participant
from lutarterial.workflows.plan import AnalysisPlan

__all__ = ["JobRunner", "job_dict", "get_job"]


def job_dict(j: AnalysisJob, trial_number: str | None = None) -> dict[str, Any]:
    return {"id": j.id, "kind": j.kind, "participant": trial_number, "status": j.status,
            "progress": round(float(j.progress or 0.0), 3), "message": j.message, "result_ids": dict(j.result_ids or {}),
            "created_by": j.created_by, "created_at": j.created_at.isoformat() if j.created_at else None,
            "updated_at": j.updated_at.isoformat() if j.updated_at else None}


def get_job(session: Any, actor: Actor, job_id: int) -> dict[str, Any]:
    from lutarterial.errors import NotFoundError

    j = session.get(AnalysisJob, int(job_id))
    if j is None:
        raise NotFoundError(f"job {job_id} does not exist")
    p = load_participant(session, actor, j.participant_id)
    return job_dict(j, p.trial_number)


class JobRunner:
    """Runs analysis jobs in threads (one at a time by default: the engines use the CPU fully)."""

    def __init__(self, registry: Any, store: str | Path, workers: int = 1, figures_dir: str | Path | None = None) -> None:
        self.registry = registry
        self.store = Path(store)
        self.figures_dir = figures_dir
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="lutarterial-job")
        self._active: set[int] = set()
        self._lock = threading.Lock()

    def reap_orphans(self) -> int:
        """Mark jobs left queued/running by a previous server process as failed."""
        with self.registry.session() as s:
            rows = list(s.scalars(select(AnalysisJob).where(AnalysisJob.status.in_(("queued", "running")))))
            with self._lock:
                rows = [j for j in rows if j.id not in self._active]
            if rows:
                with audited(s, SYSTEM_ACTOR, "server restarted while the job ran"):
                    for j in rows:
                        j.status, j.message, j.updated_at = "failed", "the server restarted while this job ran; start it again", utcnow()
        return len(rows)

    def submit(self, actor: Actor, participant: str, plan: AnalysisPlan, *, reason: str) -> dict[str, Any]:
        with self.registry.session() as s:
            p = load_participant(s, actor, participant)
            with audited(s, actor, reason):
                job = AnalysisJob(kind="participant_analyses", participant_id=p.id, status="queued", progress=0.0,
                                  parameters={"plan": asdict(plan), "reason": reason}, result_ids={},
                                  created_by=actor.username, updated_at=utcnow())
                s.add(job)
            s.flush()
            out = job_dict(job, p.trial_number)
        with self._lock:
            self._active.add(out["id"])
        self.pool.submit(self._run, out["id"], actor, plan, reason)
        return out

    def _update(self, job_id: int, actor: Actor, why: str, **fields: Any) -> None:
        with self.registry.session() as s:
            j = s.get(AnalysisJob, job_id)
            if j is None:
                return
            with audited(s, actor, why):
                for k, v in fields.items():
                    setattr(j, k, v)
                j.updated_at = utcnow()

    def _run(self, job_id: int, actor: Actor, plan: AnalysisPlan, reason: str) -> None:
        from lutarterial.workflows.analyse import error_text, store_outcomes
        from lutarterial.workflows.plan import compute_plan, materialise_plan

        why = f"analysis job {job_id}: {reason}"
        try:
            self._update(job_id, actor, why, status="running", progress=0.05, message="reading the stored series")

            def progress(fraction: float, text: str) -> None:
                self._update(job_id, actor, why, progress=min(0.95, 0.05 + 0.85 * fraction), message=text)

            tmp_parent = self.store / "tmp"
            tmp_parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix="job-", dir=tmp_parent))
            try:
                # the read transaction ends before computing: progress updates are writes (SQLite locks)
                with self.registry.session(readonly=True) as s:
                    paths = materialise_plan(s, plan, self.store, tmp)
                outcomes = compute_plan(plan, paths, progress, png=self.figures_dir is not None)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            with self.registry.session() as s:
                stored = store_outcomes(s, actor, plan.participant, outcomes, reason=reason,
                                        figures_dir=self.figures_dir)
            summary = "; ".join(f"{x.kind}: {x.status} (analysis {x.id})" for x in stored)
            self._update(job_id, actor, why, status="done", progress=1.0, message=summary,
                         result_ids={x.kind: x.id for x in stored})
        except Exception as exc:  # noqa: BLE001 - the job records every failure; the server goes on
            text = error_text(exc) if isinstance(exc, LutarterialError) else f"internal error: {error_text(exc)}"
            try:
                self._update(job_id, actor, why, status="failed", message=text[:4000])
            except Exception:  # noqa: BLE001 - nothing more can be done; the reaper will mark it
                pass
        finally:
            with self._lock:
                self._active.discard(job_id)

    def shutdown(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)

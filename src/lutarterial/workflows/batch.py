"""Cohort analyses on Dask distributed: workers get files and parameters, the client writes results.

Manifest (CSV, paths relative to the manifest's folder)::

    participant,iv,iv_voi,iah,iah_voi,names,spect,calibration
    BDX-001,p1/iv/pet,p1/iv/seg.dcm,p1/iah/pet,p1/iah/seg.dcm,p1/names.json,p1/spect,

``spect`` (optional) is a folder holding one sub-folder (or file) per SPECT time point and the
label map on the SPECT grid (``*.nii``/``*.nii.gz``, with its ``names.json``); ``calibration``
(optional) a SPECT calibration registry CSV (default: the packaged one).

:func:`analyse_row` is what a worker runs (pure: no database, no credentials). A
:class:`~lutarterial.errors.LutarterialError` (bad input: deterministic) is returned as the
participant's error and never retried; any other exception (a worker lost, an I/O hiccup) is
raised so that Dask retries the task (``retries``). :func:`run_batch` submits every row with
``client.map``, stores each result as it arrives (``as_completed``) in its own transaction through
:func:`lutarterial.workflows.analyse.store_outcomes` (re-runs are ``reproduced``, not
duplicated), and lists the failed participants at the end.
"""

from __future__ import annotations

import csv
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lutarterial.errors import InvalidInputError, LutarterialError

__all__ = ["ManifestRow", "read_manifest", "analyse_row", "run_batch", "BatchSummary", "MANIFEST_COLUMNS"]

MANIFEST_COLUMNS = ("participant", "iv", "iv_voi", "iah", "iah_voi", "names")
OPTIONAL_COLUMNS = ("spect", "calibration")


@dataclass(frozen=True)
class ManifestRow:
    line: int
    participant: str
    iv: str
    iv_voi: str
    iah: str
    iah_voi: str
    names: str | None
    spect: str | None = None
    calibration: str | None = None


def read_manifest(path: str | os.PathLike[str]) -> list[ManifestRow]:
    """Rows of a manifest with absolute paths; missing columns or files are errors naming the line."""
    p = Path(path)
    if not p.is_file():
        raise InvalidInputError(f"no such manifest: {p}")
    base = p.resolve().parent
    with p.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        cols = [c.strip() for c in (reader.fieldnames or [])]
        missing = [c for c in MANIFEST_COLUMNS if c not in cols]
        if missing:
            raise InvalidInputError(f"manifest {p.name}: missing column(s) {', '.join(missing)}; "
                                    f"expected {','.join(MANIFEST_COLUMNS)}[,spect][,calibration]")
        rows = []
        seen: set[str] = set()
        for i, raw in enumerate(reader, start=2):
            r = {k.strip(): (v or "").strip() for k, v in raw.items() if k}
            if not any(r.values()):
                continue
            tn = r["participant"].upper()
            if not tn:
                raise InvalidInputError(f"manifest line {i}: participant is empty")
            if tn in seen:
                raise InvalidInputError(f"manifest line {i}: participant {tn} appears twice")
            seen.add(tn)

            def path(col: str, required: bool = True, r: dict[str, str] = r, i: int = i) -> str | None:
                v = r.get(col) or ""
                if not v:
                    if required:
                        raise InvalidInputError(f"manifest line {i}: {col} is empty")
                    return None
                q = (base / v).resolve()
                if not q.exists():
                    raise InvalidInputError(f"manifest line {i}: {col} {v} does not exist (relative to {base})")
                return str(q)

            rows.append(ManifestRow(i, tn, path("iv"), path("iv_voi"), path("iah"), path("iah_voi"),  # type: ignore[arg-type]
                                    path("names", False), path("spect", False), path("calibration", False)))
    if not rows:
        raise InvalidInputError(f"manifest {p.name} has no participant rows")
    return rows


def spect_inputs(folder: str | os.PathLike[str]) -> tuple[list[str], str, str | None]:
    """(time-point paths, label map, names.json) of a SPECT folder (see the module docstring)."""
    d = Path(folder)
    labels = sorted([*d.glob("*.nii.gz"), *d.glob("*.nii")])
    if len(labels) != 1:
        raise InvalidInputError(f"SPECT folder {d}: expected one label map (*.nii.gz) on the SPECT grid, "
                                f"found {len(labels)}")
    points = sorted(str(q) for q in d.iterdir() if q.is_dir() or q.suffix.lower() == ".dcm")
    names = d / "names.json"
    return points, str(labels[0]), str(names) if names.is_file() else None


def analyse_row(row: ManifestRow) -> dict[str, Any]:
    """Worker task: the participant's analyses from files. Bad input -> {"error"}; other errors raise."""
    from lutarterial.workflows.analyse import spect_dosimetry_analysis, uptake_analysis

    t0 = time.perf_counter()
    try:
        outcomes = [uptake_analysis(row.iv, row.iv_voi, row.iah, row.iah_voi, row.names)]
        if row.spect:
            points, labels, names = spect_inputs(row.spect)
            outcomes.append(spect_dosimetry_analysis(points, labels, names, calibration=row.calibration))
    except LutarterialError as exc:
        return {"participant": row.participant, "error": str(exc), "seconds": time.perf_counter() - t0}
    return {"participant": row.participant, "outcomes": outcomes, "seconds": time.perf_counter() - t0,
            "worker_pid": os.getpid()}


@dataclass
class BatchSummary:
    cluster: str
    workers: int
    seconds: float = 0.0
    done: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"cluster": self.cluster, "workers": self.workers, "seconds": round(self.seconds, 3),
                "done": self.done, "failed": self.failed, "n_done": len(self.done), "n_failed": len(self.failed)}


def _check_access(registry: Any, actor: Any, rows: list[ManifestRow]) -> tuple[list[ManifestRow], list[dict[str, Any]]]:
    from lutarterial.registry.access import Permission, require
    from lutarterial.registry.services._common import load_participant

    require(actor, Permission.IMAGING_WRITE)
    if any(r.spect for r in rows):
        require(actor, Permission.DOSIMETRY_WRITE)
    ok, failed = [], []
    with registry.session(readonly=True) as s:
        for r in rows:
            try:
                load_participant(s, actor, r.participant)
                ok.append(r)
            except LutarterialError as exc:
                failed.append({"participant": r.participant, "line": r.line, "error": str(exc)})
    return ok, failed


def run_batch(registry: Any, actor: Any, rows: list[ManifestRow], *, reason: str, scheduler: str | None = None,
              workers: int = 2, retries: int = 2, progress: bool = True, cluster_kwargs: dict[str, Any] | None = None
              ) -> BatchSummary:
    """Run :func:`analyse_row` for every row on Dask and store each result (client side)."""
    from dask.distributed import Client, LocalCluster, as_completed

    from lutarterial.workflows.analyse import error_text, store_outcomes

    if not str(reason or "").strip():
        raise InvalidInputError("a reason for the change is required (audit trail)")
    ok, failed = _check_access(registry, actor, rows)
    cluster = None
    t0 = time.perf_counter()
    if scheduler:
        try:
            client = Client(scheduler, timeout="20s")
        except (OSError, TimeoutError) as exc:
            raise InvalidInputError(f"cannot reach the dask scheduler at {scheduler}: {exc}") from None
        label = f"scheduler {scheduler}"
        n = len(client.scheduler_info().get("workers", {}))
    else:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                               **(cluster_kwargs or {}))
        client = Client(cluster)
        label = f"LocalCluster ({workers} worker processes)"
        n = workers
    summary = BatchSummary(label, n)
    summary.failed.extend(failed)
    bar = None
    try:
        futures = client.map(analyse_row, ok, key=[f"analyse-{r.participant}" for r in ok], retries=retries,
                             pure=False)
        by_key = {f.key: r for f, r in zip(futures, ok, strict=True)}
        if progress:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
            bar.start()
            task = bar.add_task("analysing", total=len(futures))
        for fut in as_completed(futures):
            row = by_key[fut.key]
            try:
                res = fut.result()
            except Exception as exc:  # noqa: BLE001 - retries exhausted: this participant failed
                summary.failed.append({"participant": row.participant, "line": row.line, "error": error_text(exc)})
            else:
                if "error" in res:
                    summary.failed.append({"participant": row.participant, "line": row.line, "error": res["error"]})
                else:
                    try:
                        with registry.session() as s:
                            stored = store_outcomes(s, actor, row.participant, res["outcomes"], reason=reason)
                        summary.done.append({"participant": row.participant, "seconds": round(res["seconds"], 3),
                                             "analyses": [x.to_dict() for x in stored]})
                    except LutarterialError as exc:
                        summary.failed.append({"participant": row.participant, "line": row.line, "error": str(exc)})
            if bar is not None:
                bar.advance(task)
    finally:
        if bar is not None:
            bar.stop()
        client.close()
        if cluster is not None:
            cluster.close()
    summary.seconds = time.perf_counter() - t0
    summary.done.sort(key=lambda d: d["participant"])
    summary.failed.sort(key=lambda d: d["participant"])
    return summary

"""Demo seeding: users and synthetic participants at every stage of the LUTARTERIAL schedule.

``seed_demo(url)`` is the README's main job on the embedded default. It upgrades the database,
creates the demo users (one shared password, printed and clearly marked as demo), then brings
synthetic participants to each stage through the registry's audited services (never by writing
rows directly), running the project's engines: screening records from
``lutarterial.records.synthetic`` screened by ``lutarterial.eligibility``; for the participants
in ``IMAGING_PARTICIPANTS`` a small synthetic IV + IAH PET/CT/SEG + SPECT patient written by
``lutarterial.imaging.synthetic`` into ``<data dir>/demo-imaging/<trial number>/``, compared by the
imaging engine (``imaging.workflow.uptake_files``) and dosed by the dosimetry engine
(``dosimetry.workflow.tac_dosimetry``), their PNG figures kept in ``<data dir>/figures/``;
laboratory values graded by the registry's CTCAE grading. Finally it verifies the audit chain.

Idempotent: each demo participant is registered with the reason ``demo seed: <label>``; a
label already in the audit trail is not seeded again.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select

__all__ = ["DEMO_PASSWORD", "DEMO_USERS", "DemoUser", "DemoSummary", "ensure_demo_users", "seed_demo",
           "print_summary", "STAGES", "IMAGING_PARTICIPANTS", "figures_dir", "store_figure"]

#: Shared password of every demo user. DEMO ONLY: never use the demo users on real data.
DEMO_PASSWORD = "demo-lutarterial"


@dataclass(frozen=True)
class DemoUser:
    username: str
    role: str
    sites: tuple[str, ...]
    full_name: str
    load_test: bool = False


DEMO_USERS: tuple[DemoUser, ...] = (
    DemoUser("admin", "admin", (), "Demo administrator"),
    DemoUser("coord.bdx", "coordinator", ("BDX",), "Demo coordinator, Bordeaux", load_test=True),
    DemoUser("inv.bdx", "investigator", ("BDX",), "Demo investigator, Bordeaux", load_test=True),
    DemoUser("phys.bdx", "physicist", ("BDX",), "Demo physicist, Bordeaux"),
    DemoUser("coord.tls", "coordinator", ("TLS",), "Demo coordinator, Toulouse", load_test=True),
    DemoUser("inv.tls", "investigator", ("TLS",), "Demo investigator, Toulouse", load_test=True),
    DemoUser("monitor", "monitor", ("BDX", "PES", "NIM", "TLS"), "Demo monitor (read-only)"),
    DemoUser("stat", "statistician", (), "Demo statistician (read-only, all sites, pseudonymised)"),  # issue 12
    DemoUser("dm", "data_manager", ("BDX", "PES", "NIM", "TLS"), "Demo data manager"),  # issue 13
)

#: Stages in schedule order; each demo participant is brought up to one of them.
STAGES = ("screen_failed", "eligible", "enrolled", "pet_done", "iah_given", "follow_up")
_PLAN = (("BDX", STAGES), ("TLS", ("screen_failed", "eligible", "enrolled", "iah_given", "follow_up")))


@dataclass
class DemoSummary:
    db_url: str
    users: list[str] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)
    stages: dict[str, str] = field(default_factory=dict)
    audit_ok: bool = False
    audit_rows: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["demo_password"] = DEMO_PASSWORD
        return d


def _open(url: str) -> Any:
    from lutarterial.registry.db import Registry, upgrade

    upgrade(url)
    return Registry.open(url)


def ensure_demo_users(url: str, registry: Any = None) -> list[str]:
    """Create the demo users that do not exist yet (audited as the system). Returns usernames."""
    from lutarterial.registry import services
    from lutarterial.registry.access import SYSTEM_ACTOR
    from lutarterial.registry.models import User

    reg = registry or _open(url)
    try:
        with reg.session() as s:
            have = set(s.scalars(select(User.username)))
            for u in DEMO_USERS:
                if u.username not in have:
                    services.create_user(s, SYSTEM_ACTOR, username=u.username, password=DEMO_PASSWORD,
                                         roles=[u.role], site_codes=u.sites, full_name=u.full_name,
                                         reason="demo seed: demo user")
    finally:
        if registry is None:
            reg.dispose()
    return [u.username for u in DEMO_USERS]


def _actor(reg: Any, username: str) -> Any:
    from lutarterial.registry import services
    from lutarterial.registry.models import User

    with reg.session(readonly=True) as s:
        uid = s.scalars(select(User.id).where(User.username == username)).one()
        return services.actor_for(s, uid)


def _records() -> tuple[list[tuple[dict[str, Any], dt.date]], list[tuple[dict[str, Any], dt.date]]]:
    """Synthetic records split into (eligible, ineligible) by the real screening engine."""
    from lutarterial.eligibility import screen
    from lutarterial.records.synthetic import make_records

    eligible, ineligible = [], []
    for rec in make_records(40, seed=2026):
        as_of = dt.date.fromisoformat(rec.get("screening_date") or "2024-06-03")
        verdict = screen(rec, as_of=as_of).to_dict()["verdict"]
        if verdict == "eligible":
            eligible.append((rec, as_of))
        elif verdict == "ineligible":
            ineligible.append((rec, as_of))
    return eligible, ineligible


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


#: Synthetic PET/SPECT patients generated per demo run (the slow part: ~10-15 s each on 2 cores).
IMAGING_PARTICIPANTS = ("BDX/iah_given", "BDX/follow_up")
#: Small phantom: (slices, rows, columns) voxels of 8 mm.
DEMO_SHAPE = (32, 48, 48)
DEMO_VOXEL_MM = (8.0, 8.0, 8.0)
SPECT_TIMES_H = (4.0, 24.0, 96.0, 168.0)
#: Relative SD of multiplicative voxel noise in the synthetic images (so measured != truth).
DEMO_NOISE = 0.05


def figures_dir(data_dir: Path) -> Path:
    """Content-addressed PNG store of the web app (``<sha256>.png``) inside the data directory."""
    return Path(data_dir) / "figures"


def store_figure(data_dir: Path, png: bytes, caption: str) -> dict[str, str]:
    """Write ``png`` as ``figures/<sha256>.png``; return the reference stored in a result."""
    sha = hashlib.sha256(png).hexdigest()
    d = figures_dir(data_dir)
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"{sha}.png"
    if not path.exists():
        path.write_bytes(png)
    return {"sha256": sha, "caption": caption}


def _series_uid(pet_dir: str) -> tuple[str, str]:
    """(StudyInstanceUID, SeriesInstanceUID) of the first DICOM file of a series directory."""
    import pydicom

    first = sorted(Path(pet_dir).iterdir())[0]
    ds = pydicom.dcmread(first, stop_before_pixels=True)
    return str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID)


def _dir_hash(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for f in sorted(p for root in paths for p in ([root] if root.is_file() else root.rglob("*")) if p.is_file()):
        h.update(f.name.encode())
        h.update(hashlib.sha256(f.read_bytes()).digest())
    return h.hexdigest()


@dataclass
class DemoImaging:
    """What the engines produced for one synthetic demo patient (stored through the services)."""

    imaging: dict[str, Any]
    study_instance_uid: str
    series_instance_uids: list[str]
    input_hashes: dict[str, str]
    parameters: dict[str, Any]
    dosimetry: dict[str, Any]
    dosimetry_parameters: dict[str, Any]
    truth_lesion_ratios: dict[str, float]


def _imaging_and_dosimetry(seed: int, out_dir: Path, data_dir: Path) -> DemoImaging:
    """Generate a small synthetic IV + IAH patient and run the real engines on its files.

    Imaging: ``lutarterial.imaging.workflow.uptake_files`` on the written PET series and DICOM SEG
    (IAH vs IV per VOI, lesion geometric-mean ratio with CI), with its figure. Dosimetry:
    ``lutarterial.dosimetry.workflow.tac_dosimetry`` on time-activity curves taken from the
    synthetic 177Lu SPECT time points (mean activity concentration per VOI x VOI volume), with the
    engine's TAC plot. The phantom's known truth is kept only for the test that the engine found it.
    """
    from lutarterial.dosimetry.io import VoiTac, plot_tacs
    from lutarterial.dosimetry.workflow import tac_dosimetry
    from lutarterial.imaging.synthetic import write_synthetic_patient
    from lutarterial.imaging.workflow import uptake_files

    truth = write_synthetic_patient(out_dir, seed=seed, shape=DEMO_SHAPE, voxel_mm=DEMO_VOXEL_MM, n_lesions=2,
                                    noise=DEMO_NOISE, spect_times_h=SPECT_TIMES_H, ct_upsample=1)
    res = uptake_files(truth.iv.pet_dir, truth.iv.seg_path, truth.iah.pet_dir, truth.iah.seg_path,
                       names=truth.names_path, png=True)
    imaging = res.as_dict()
    figures = []
    if res.png:
        figures.append(store_figure(data_dir, res.png, "IAH vs IV: PET slices with VOIs and per-VOI uptake ratios "
                                                      "(lutarterial.imaging figure)"))
    study_iv, series_iv = _series_uid(truth.iv.pet_dir)
    study_iah, series_iah = _series_uid(truth.iah.pet_dir)
    imaging["figures"] = figures
    imaging["studies"] = [{"route": "IV", "study_instance_uid": study_iv, "pet_series_instance_uid": series_iv,
                           "injected_mbq": round(truth.iv.injected_bq / 1e6, 1), "scan_time": truth.iv.scan_time},
                          {"route": "IAH", "study_instance_uid": study_iah, "pet_series_instance_uid": series_iah,
                           "injected_mbq": round(truth.iah.injected_bq / 1e6, 1), "scan_time": truth.iah.scan_time}]
    inputs = {"iv_pet": _dir_hash([Path(truth.iv.pet_dir)]), "iv_seg": _dir_hash([Path(truth.iv.seg_path)]),
              "iah_pet": _dir_hash([Path(truth.iah.pet_dir)]), "iah_seg": _dir_hash([Path(truth.iah.seg_path)])}
    parameters = {"engine": "lutarterial.imaging.workflow.uptake_files", "phantom_seed": seed,
                  "shape_voxels": "x".join(map(str, DEMO_SHAPE)), "voxel_mm": DEMO_VOXEL_MM[0],
                  "files": str(out_dir)}
    # Dosimetry from the SPECT time points: activity per VOI = mean concentration x volume.
    volumes = truth.iv.volume_ml
    tacs = []
    for v in truth.vois:
        if v.name not in volumes or v.name.startswith("liver ") or volumes[v.name] <= 0:
            continue
        acts = tuple(round(sp.bqml_mean[v.name] * volumes[v.name] / 1e6, 4) for sp in truth.spect)
        tacs.append(VoiTac(voi=v.name, cycle="IAH", time_h=tuple(sp.time_h for sp in truth.spect), activity_mbq=acts,
                           mass_g=round(volumes[v.name] * 1.05, 1),
                           kind="lesion" if v.kind in ("lesion", "extrahepatic") else "organ"))
    dos = tac_dosimetry(tacs, nuclide="Lu-177")
    fits = dos.pop("_fits")
    dos_figs = []
    with tempfile.TemporaryDirectory() as tmp:
        png_path = plot_tacs(Path(tmp) / "tac.png", [(t.voi, t.time_h, t.activity_mbq, fits.get((t.voi, t.cycle)))
                                                      for t in tacs])
        dos_figs.append(store_figure(data_dir, png_path.read_bytes(), "Time-activity curves and fitted models "
                                                                       "(lutarterial.dosimetry)"))
    dos["figures"] = dos_figs
    dos["tacs"] = [{"region": t.voi, "time_h": list(t.time_h), "activity_mbq": list(t.activity_mbq)} for t in tacs]
    dos["therapy_activity_mbq"] = round(truth.therapy_activity_bq / 1e6, 1)
    dos_params = {"engine": "lutarterial.dosimetry.workflow.tac_dosimetry", "nuclide": "Lu-177", "model": "auto (AICc)",
                  "time_points_h": list(SPECT_TIMES_H), "mass": "VOI volume x 1.05 g/mL",
                  "tac_source": "synthetic 177Lu SPECT: mean Bq/mL per VOI x VOI volume"}
    truth_ratios = {v.name: v.suv_iah / v.suv_iv for v in truth.vois if v.kind == "lesion"}
    return DemoImaging(imaging, study_iah, [series_iv, series_iah], inputs, parameters, dos, dos_params, truth_ratios)


from lutarterial.web import demo_dm as dm_demo  # noqa: E402  (issue 13)


def _seed_one(reg: Any, site: str, label: str, stage: str, rec: dict[str, Any], as_of: dt.date,
              seed: int, data_dir: Path) -> str:
    from lutarterial.registry import services

    coord, inv = _actor(reg, f"coord.{site.lower()}"), _actor(reg, f"inv.{site.lower()}")
    phys = _actor(reg, "phys.bdx") if site == "BDX" else _actor(reg, "admin")
    d = lambda days: (as_of + dt.timedelta(days=days)).isoformat()  # noqa: E731
    rec = {**rec, "site": site}
    # issue 13: registration agrees with the screening record (edit checks pass), except the
    # deliberate discrepancies of demo_dm.DISCREPANCIES (they appear as open queries)
    rec = dm_demo.record_for(rec, label)
    sex, yob, consent_date = dm_demo.registration_from_record(rec, label, default_consent=d(-7))
    with reg.session() as s:
        p = services.register_participant(s, coord, site_code=site, reason=f"demo seed: {label}",
                                          sex=sex, year_of_birth=yob)
        tn = p.trial_number
        services.record_consent(s, coord, p.id, version="v3.0 2023-11", signed_date=consent_date,
                                reason="demo: consent signed at the screening visit")
        services.screen_participant(s, coord, p.id, rec, as_of=as_of, reason="demo: screening against the protocol")
    if stage in ("screen_failed", "eligible"):
        return tn
    with reg.session() as s:
        services.enrol(s, inv, tn, enrolled_date=d(7), reason="demo: eligible, enrolled by the investigator")
    if stage == "enrolled":
        return tn
    with reg.session() as s:
        dm_demo.record_iv_history(s, services, coord, tn, rec)  # issue 13: cycles 1-4 from the record
        services.record_visit(s, coord, tn, kind="pet_after_iv", status="done", visit_date=d(15),
                              reason="demo: 68Ga PET after the IV injection")
        services.record_visit(s, coord, tn, kind="iah_cycle", status="planned", planned_date=d(70),
                              reason="demo: IAH cycle scheduled")
    if stage == "pet_done":
        return tn
    with reg.session() as s:
        services.record_iah_cycle(s, inv, tn, visit_date=d(70), activity_mbq=7400.0,
                                  artery="proper hepatic artery", catheter_position="distal to the gastroduodenal artery",
                                  reason="demo: IAH LUTATHERA cycle given")
        # issue 11: the 68Ga PET after the IAH injection is on the IAH-cycle day (177Lu given 2 h later)
        services.record_visit(s, coord, tn, kind="pet_after_iah", status="done", visit_date=d(70),
                              reason="demo: 68Ga PET after the IAH injection")
    from lutarterial.workflows.demo import demo_imaging  # issue 11: every treated participant, through the pipeline

    demo_imaging(reg, phys, tn, seed=seed, iv_pet_date=as_of + dt.timedelta(days=15),
                 iah_date=as_of + dt.timedelta(days=70), data_dir=data_dir)
    if stage == "iah_given":
        return tn
    with reg.session() as s:
        services.record_visit(s, coord, tn, kind="follow_up", number=1, status="done",
                              visit_date=d(dm_demo.follow_up_1_day(label)), reason="demo: follow-up visit 1")
        services.record_visit(s, coord, tn, kind="follow_up", number=2, status="done", visit_date=d(182),
                              reason="demo: follow-up visit 2")
        for i, (plt, hb) in enumerate(((210.0, 12.9), (142.0, 11.8), (88.0, 10.6))):
            day = d(70 + 28 * i)
            # LLN with each value (the laboratory's reference range), so CTCAE can grade decreases
            services.record_lab(s, coord, tn, analyte="platelets", value=plt, unit="10*9/L", collected_date=day,
                                lln=150.0, uln=400.0, reason="demo: laboratory results")
            services.record_lab(s, coord, tn, analyte="hemoglobin", value=hb, unit="g/dL", collected_date=day,
                                lln=12.0, uln=16.0, reason="demo: laboratory results")
        services.record_adverse_event(s, coord, tn, term="Nausea", grade=1, onset_date=d(71), relatedness="probable",
                                      reason="demo: adverse event reported")
        services.record_adverse_event(s, coord, tn, term="Platelet count decreased", grade=1, onset_date=d(126),
                                      relatedness="probable", reason="demo: adverse event reported")
        for date, response, total, details in _recist_series(d):
            services.record_recist(s, inv, tn, assessment_date=date, response=response, target_sum_mm=total,
                                   details=details, reason="demo: RECIST 1.1 assessment (clinical engine)")
    return tn


#: Demo lesion measurements (mm): two liver targets, one nodal target (short axis), one non-target.
_RECIST_PLAN = ((-10, {"L1": 42.0, "L2": 30.0, "N1": 16.0}), (126, {"L1": 30.0, "L2": 20.0, "N1": 10.0}),
                (182, {"L1": 27.0, "L2": 18.0, "N1": 9.0}))


def _recist_series(d: Any) -> list[tuple[str, str, float | None, dict[str, Any]]]:
    """RECIST 1.1 time points evaluated by ``lutarterial.clinical.recist.evaluate_recist``.

    Each stored record keeps its lesion measurements (``details.lesions``, the engine's input
    format) and the engine's answer for that time point; the page re-runs the engine on them.
    """
    from lutarterial.clinical.recist import evaluate_recist, parse_recist_input

    assessments = []
    for k, (day, sizes) in enumerate(_RECIST_PLAN):
        if k == 0:
            lesions = [{"id": i, "role": "target", "organ": "lymph node" if i.startswith("N") else "liver",
                        "nodal": i.startswith("N"), "diameter_mm": v} for i, v in sizes.items()]
            lesions.append({"id": "NT1", "role": "non_target", "organ": "liver", "status": "present"})
        else:
            lesions = [{"id": i, "diameter_mm": v} for i, v in sizes.items()] + [{"id": "NT1", "status": "present"}]
        assessments.append({"date": d(day), "baseline": k == 0, "lesions": lesions})
    result = evaluate_recist(parse_recist_input({"assessments": assessments})[1])
    out = []
    for doc, tp in zip(assessments, result.assessments):
        details = {"baseline": doc["baseline"], "lesions": doc["lesions"], "timepoint": tp.to_dict(),
                   "engine": "lutarterial.clinical.recist.evaluate_recist"}
        out.append((doc["date"], tp.overall or "NE", tp.sum_mm, details))
    return out


def _version() -> str:
    try:
        from importlib.metadata import version

        return f"lutarterial {version('lutarterial')}"
    except Exception:  # noqa: BLE001 - not installed as a distribution (PYTHONPATH=src)
        return "lutarterial (source tree)"


def _seeded_labels(reg: Any) -> dict[str, str]:
    """Labels of demo participants already registered -> trial number (from the audit trail)."""
    import json

    from lutarterial.registry.models import AuditEntry

    out = {}
    with reg.session(readonly=True) as s:
        q = select(AuditEntry.reason, AuditEntry.new_values).where(
            AuditEntry.table_name == "participants", AuditEntry.action.in_(("create", "insert")),
            AuditEntry.reason.like("demo seed: %"))
        for reason, new in s.execute(q):
            out[reason[len("demo seed: "):]] = json.loads(new or "{}").get("trial_number", "?")
    return out


def seed_demo(url: str) -> DemoSummary:
    """Upgrade, seed users and participants at every stage (idempotent), verify the audit chain.

    Two demo runs at once on one database: the second waits for the first (a database-wide
    lock, :mod:`lutarterial.registry.locks`), then finds every stage seeded (issue 9)."""
    from lutarterial.registry.locks import registry_lock

    with registry_lock(url, "demo"):
        return _seed_demo_locked(url)


def _seed_demo_locked(url: str) -> DemoSummary:
    from lutarterial.registry.audit import verify_audit_chain
    from lutarterial.web.settings import data_dir_for

    t0 = time.perf_counter()
    summary = DemoSummary(db_url=url)
    reg = _open(url)
    try:
        summary.users = ensure_demo_users(url, reg)
        done = _seeded_labels(reg)
        eligible, ineligible = _records()
        if not eligible:
            summary.notes.append("the screening engine found no eligible synthetic record; later stages skipped")
        n = 0
        for site, stages in _PLAN:
            for stage in stages:
                label = f"{site}/{stage}"
                n += 1
                if label in done:
                    summary.existing.append(done[label])
                    summary.stages[done[label]] = stage
                    continue
                pool = ineligible if stage == "screen_failed" else eligible
                if not pool:
                    continue
                rec, as_of = pool[n % len(pool)]
                tn = _seed_one(reg, site, label, stage, rec, as_of, seed=n, data_dir=data_dir_for(url))
                summary.created.append(tn)
                summary.stages[tn] = stage
                dm_demo.story(reg, tn, stage, site)  # issue 13: a query answered, a signature, SDV
        with reg.session(readonly=True) as s:
            rep = verify_audit_chain(s)
        summary.audit_ok, summary.audit_rows = rep.ok, rep.rows_checked
        if not rep.ok:
            summary.notes.append(f"AUDIT CHAIN BROKEN at row {rep.first_broken_id}: {rep.problem}")
    finally:
        reg.dispose()
    summary.seconds = round(time.perf_counter() - t0, 2)
    return summary


def print_summary(summary: DemoSummary, url: str, *, port: int = 8000, host: str = "127.0.0.1") -> None:
    """Readable summary: demo users and password, participants per stage, audit check, next command."""
    from rich.console import Console
    from rich.table import Table

    con = Console()
    con.print(f"[bold]LUTARTERIAL demo[/bold] database: {url}  ({summary.seconds:.1f} s)")
    users = Table(title="Demo users — DEMO PASSWORD FOR ALL: " + DEMO_PASSWORD + "  (synthetic data only)")
    for col in ("username", "role", "sites"):
        users.add_column(col)
    for u in DEMO_USERS:
        users.add_row(u.username, u.role, ", ".join(u.sites) or "all")
    con.print(users)
    parts = Table(title="Synthetic participants")
    for col in ("trial number", "stage", "this run"):
        parts.add_column(col)
    for tn, stage in summary.stages.items():
        parts.add_row(tn, stage, "created" if tn in summary.created else "already there")
    con.print(parts)
    state = "[green]intact[/green]" if summary.audit_ok else "[red]BROKEN[/red]"
    con.print(f"audit chain: {state} ({summary.audit_rows} rows verified)")
    for note in summary.notes:
        con.print(f"[yellow]note:[/yellow] {note}")
    db_opt = "" if url.endswith("data/lutarterial.db") else f" --db '{url}'"
    con.print(f"browse it: [bold]lutarterial serve{db_opt} --port {port}[/bold]  then open http://{host}:{port}/")

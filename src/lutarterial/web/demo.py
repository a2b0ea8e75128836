"""Demo seeding: users and synthetic participants at every stage of the LUTARTERIAL schedule.

``seed_demo(url)`` is the README's main job on the embedded default. It upgrades the database,
creates the demo users (one shared password, printed and clearly marked as demo), then brings
synthetic participants to each stage through the registry's audited services (never by writing
rows directly), running the project's engines: screening records from
``lutarterial.records.synthetic`` screened by ``lutarterial.eligibility``; a small synthetic
IV + IAH patient from ``lutarterial.imaging.synthetic``; time-activity curves fitted by
``lutarterial.dosimetry.kinetics`` and converted to absorbed dose by ``lutarterial.dosimetry.dose``;
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
from typing import Any

from sqlalchemy import select

__all__ = ["DEMO_PASSWORD", "DEMO_USERS", "DemoUser", "DemoSummary", "ensure_demo_users", "seed_demo",
           "print_summary", "STAGES"]

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


def _imaging_and_dosimetry(seed: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """A small synthetic IV + IAH patient (imaging engine) and dosimetry from its TACs."""
    from lutarterial.dosimetry.dose import organ_self_dose
    from lutarterial.dosimetry.kinetics import fit_tac
    from lutarterial.imaging.synthetic import write_synthetic_patient

    with tempfile.TemporaryDirectory() as tmp:
        truth = write_synthetic_patient(tmp, seed=seed, shape=(24, 32, 32), voxel_mm=(10.0, 10.0, 10.0),
                                        n_lesions=2, spect_times_h=(24.0,), ct_upsample=1)
    vois = [{"region": v.name, "kind": v.kind, "suv_mean_iv": round(truth.iv.suv_mean.get(v.name, v.suv_iv), 3),
             "suv_mean_iah": round(truth.iah.suv_mean.get(v.name, v.suv_iah), 3),
             "iah_to_iv_ratio": round(truth.iah.suv_mean.get(v.name, v.suv_iah)
                                      / max(truth.iv.suv_mean.get(v.name, v.suv_iv), 1e-9), 3),
             "volume_ml": round(truth.iv.volume_ml.get(v.name, 0.0), 1)} for v in truth.vois]
    imaging = {
        "method": "synthetic phantom from lutarterial.imaging.synthetic (known truth per VOI, SUVbw)",
        "iv_injected_mbq": round(truth.iv.injected_bq / 1e6, 1), "iah_injected_mbq": round(truth.iah.injected_bq / 1e6, 1),
        "vois": vois,
    }
    times = [4.0, 24.0, 96.0, 168.0]
    rng = random.Random(seed)
    regions, tacs = [], []
    therapy_mbq = truth.therapy_activity_bq / 1e6
    total_uptake = sum(max(v["suv_mean_iah"], 0.0) * max(v["volume_ml"], 1.0) for v in vois) or 1.0
    for v, sv in zip(vois, truth.vois):
        frac = 0.35 * max(v["suv_mean_iah"], 0.0) * max(v["volume_ml"], 1.0) / total_uptake
        a0 = therapy_mbq * frac
        acts = [round(a0 * 2 ** (-t / sv.teff_h) * (1 + rng.gauss(0, 0.03)), 4) for t in times]
        fit = fit_tac(times, acts, physical_half_life_h=159.5)
        mass_g = max(v["volume_ml"], 1.0) * 1.05
        dose = organ_self_dose(fit.tia_mbq_h, mass_g, kind="sphere" if v["kind"] == "lesion" else "organ")
        tacs.append({"region": v["region"], "time_h": times, "activity_mbq": acts})
        regions.append({"region": v["region"], "model": fit.model, "teff_h": round(fit.teff_h or 0.0, 1),
                        "tia_mbq_h": round(fit.tia_mbq_h, 1), "mass_g": round(mass_g, 1),
                        "dose_gy": round(dose.dose_gy, 3)})
    dosimetry = {"method": "TAC fit by AICc (lutarterial.dosimetry.kinetics.fit_tac), self-dose "
                           "(lutarterial.dosimetry.dose.organ_self_dose), 177Lu",
                 "therapy_activity_mbq": round(therapy_mbq, 1), "regions": regions, "tacs": tacs}
    return imaging, dosimetry


def _seed_one(reg: Any, site: str, label: str, stage: str, rec: dict[str, Any], as_of: dt.date,
              seed: int) -> str:
    from lutarterial.registry import services

    coord, inv = _actor(reg, f"coord.{site.lower()}"), _actor(reg, f"inv.{site.lower()}")
    phys = _actor(reg, "phys.bdx") if site == "BDX" else _actor(reg, "admin")
    d = lambda days: (as_of + dt.timedelta(days=days)).isoformat()  # noqa: E731
    rec = {**rec, "site": site}
    with reg.session() as s:
        p = services.register_participant(s, coord, site_code=site, reason=f"demo seed: {label}",
                                          sex=random.Random(seed).choice("FM"), year_of_birth=1950 + seed % 25)
        tn = p.trial_number
        services.record_consent(s, coord, p.id, version="v3.0 2023-11", signed_date=d(-7),
                                reason="demo: consent signed at the screening visit")
        services.screen_participant(s, coord, p.id, rec, as_of=as_of, reason="demo: screening against the protocol")
    if stage in ("screen_failed", "eligible"):
        return tn
    with reg.session() as s:
        services.enrol(s, inv, tn, enrolled_date=d(7), reason="demo: eligible, enrolled by the investigator")
    if stage == "enrolled":
        return tn
    with reg.session() as s:
        services.record_visit(s, coord, tn, kind="iv_cycle", number=1, status="done", visit_date=d(14),
                              activity_mbq=7400.0, reason="demo: first IV LUTATHERA cycle given")
        services.record_visit(s, coord, tn, kind="pet_after_iv", status="done", visit_date=d(15),
                              reason="demo: 68Ga PET after the IV injection")
        services.record_visit(s, coord, tn, kind="iah_cycle", status="planned", planned_date=d(70),
                              reason="demo: IAH cycle scheduled")
    if stage == "pet_done":
        return tn
    imaging, dosimetry = _imaging_and_dosimetry(seed)
    with reg.session() as s:
        services.record_iah_cycle(s, inv, tn, visit_date=d(70), activity_mbq=7400.0,
                                  artery="proper hepatic artery", catheter_position="distal to the gastroduodenal artery",
                                  reason="demo: IAH LUTATHERA cycle given")
        services.record_visit(s, coord, tn, kind="pet_after_iah", status="done", visit_date=d(71),
                              reason="demo: 68Ga PET after the IAH injection")
        ima = services.attach_imaging_analysis(
            s, phys, tn, kind="pet_iah_vs_iv", result=imaging, software_version="lutarterial demo",
            input_hashes={"synthetic_phantom": _sha(f"phantom-{seed}")},
            parameters={"seed": seed, "shape": "24x32x32", "voxel_mm": 10.0},
            reason="demo: IAH vs IV uptake comparison")
        services.attach_dosimetry_analysis(
            s, phys, tn, kind="voi_dosimetry", result=dosimetry, imaging_analysis_id=ima.id,
            software_version="lutarterial demo", parameters={"nuclide": "Lu-177", "time_points_h": [4, 24, 96, 168]},
            input_hashes={"tac": _sha(repr(dosimetry["tacs"]))}, reason="demo: absorbed dose per VOI")
    if stage == "iah_given":
        return tn
    with reg.session() as s:
        services.record_visit(s, coord, tn, kind="follow_up", number=1, status="done", visit_date=d(126),
                              reason="demo: follow-up visit 1")
        for i, (plt, hb) in enumerate(((210.0, 12.9), (142.0, 11.8), (88.0, 10.6))):
            day = d(70 + 28 * i)
            services.record_lab(s, coord, tn, analyte="platelets", value=plt, unit="10*9/L", collected_date=day,
                                reason="demo: laboratory results")
            services.record_lab(s, coord, tn, analyte="hemoglobin", value=hb, unit="g/dL", collected_date=day,
                                reason="demo: laboratory results")
        services.record_adverse_event(s, coord, tn, term="Nausea", grade=1, onset_date=d(71), relatedness="probable",
                                      reason="demo: adverse event reported")
        services.record_adverse_event(s, coord, tn, term="Platelet count decreased", grade=1, onset_date=d(126),
                                      relatedness="probable", reason="demo: adverse event reported")
        services.record_recist(s, inv, tn, assessment_date=d(-10), response="NE", target_sum_mm=84.0,
                               reason="demo: baseline RECIST measurement")
        services.record_recist(s, inv, tn, assessment_date=d(126), response="SD", target_sum_mm=71.0,
                               reason="demo: RECIST 1.1 at follow-up")
    return tn


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
    """Upgrade, seed users and participants at every stage (idempotent), verify the audit chain."""
    from lutarterial.registry.audit import verify_audit_chain

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
                tn = _seed_one(reg, site, label, stage, rec, as_of, seed=n)
                summary.created.append(tn)
                summary.stages[tn] = stage
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

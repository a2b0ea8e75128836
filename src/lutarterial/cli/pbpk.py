"""CLI of the PBPK model: ``pbpk simulate``, ``pbpk predict``, ``pbpk fit``, ``pbpk sbml``.

Thin shell over :mod:`lutarterial.pbpk`; ``fit`` reads a participant's IV 68Ga PET analysis from
the registry and stores the prediction as an audited imaging analysis of kind
``pbpk_prediction``. Bad input: ``error: ...`` on stderr and exit 2 (3 access denied).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import typer

from lutarterial.cli.formatting import human_number, human_range, human_value

__all__ = ["register", "pbpk_app", "participant_measurement", "fit_lines"]

pbpk_app = typer.Typer(help="PBPK model of SSTR2 radiopeptides (IV and hepatic-arterial route).",
                       no_args_is_help=True)

_DB_HELP = "Database URL (default: $LUTARTERIAL_DB or sqlite:///./data/lutarterial.db)."
PREDICTION_KIND = "pbpk_prediction"


def _echo_json(data: object) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def _time_grid(t_end: float) -> list[float]:
    from lutarterial.pbpk.solver import STANDARD_TIMES_H

    grid = {round(t_end * (i / 60.0) ** 2, 6) for i in range(1, 61)}
    grid |= {t for t in STANDARD_TIMES_H if t <= t_end}
    return sorted(t for t in grid if t > 0)


@pbpk_app.command("simulate")
def simulate_cmd(
    route: str = typer.Option(..., "--route", help="iv or iah."),
    lobe: str = typer.Option("whole", "--lobe", help="iah: right, left or whole (proper hepatic artery)."),
    nuclide: str = typer.Option(..., "--nuclide", help="Ga-68, Lu-177, In-111 or Y-90."),
    activity_mbq: float = typer.Option(..., "--activity-mbq", help="Administered activity (MBq)."),
    peptide_ug: float = typer.Option(..., "--peptide-ug", help="Total peptide (labelled + unlabelled), ug."),
    params: Path = typer.Option(None, "--params", help="YAML file overriding population parameters."),
    t_end_h: float = typer.Option(None, "--t-end-h", help="End time (h); default 4 h for Ga-68, else 168 h."),
    infusion_min: float = typer.Option(1.0, "--infusion-min", help="Infusion duration (min); 0 = bolus."),
    peptide: str = typer.Option("DOTATATE", "--peptide", help="DOTATATE, DOTATOC or DTPA-octreotide."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    png: Path = typer.Option(None, "--png", help="Write a time-course figure (PNG) here."),
) -> None:
    """Simulate the typical patient: time courses per organ and pool, %IA at standard times."""
    from lutarterial.errors import InvalidInputError
    from lutarterial.pbpk.model import ORGANS, POOLS
    from lutarterial.pbpk.parameters import half_life_h, load_parameters
    from lutarterial.pbpk.solver import STANDARD_TIMES_H, Administration, simulate

    adm = Administration(route=route.strip().lower(), nuclide=nuclide, activity_mbq=activity_mbq,
                         peptide_ug=peptide_ug, lobe=lobe.strip().lower(), infusion_min=infusion_min,
                         peptide=peptide)
    if route.strip().lower() == "iv" and lobe.strip().lower() != "whole":
        raise InvalidInputError("--lobe applies to --route iah only")
    name, t_half = half_life_h(nuclide)
    if t_end_h is None:
        t_end_h = 4.0 if name == "Ga-68" else 168.0
    if not (math.isfinite(t_end_h) and 0 < t_end_h <= 24 * 365):
        raise InvalidInputError(f"--t-end-h {t_end_h} must be within 0-8760 h")
    if t_end_h <= adm.infusion_min / 60.0:
        raise InvalidInputError("--t-end-h must be after the end of the infusion")
    pp = load_parameters(params)
    times = _time_grid(t_end_h)
    res = simulate(pp.sample(1, None, variability=False), adm, times)
    std = [t for t in STANDARD_TIMES_H if t <= t_end_h]
    idx = {t: times.index(t) for t in std}
    courses: dict[str, Any] = {}
    for organ in ORGANS:
        courses[organ] = {pool: [round(float(x), 6) for x in res.pool_activity(organ, pool)[0]] for pool in POOLS}
        courses[organ]["total"] = [round(float(x), 6) for x in res.organ_activity(organ)[0]]
    courses["blood"] = {"total": [round(float(x), 6) for x in res.organ_activity("blood")[0]]}
    courses["urine"] = {"total": [round(float(x), 6) for x in res.urine_activity()[0]]}
    pia: dict[str, dict[str, float]] = {}
    for organ in (*ORGANS, "blood", "urine"):
        v = res.percent_ia(organ)[0]
        pia[organ] = {f"{t:g}": round(float(v[i]), 4) for t, i in idx.items()}
    out = {
        "route": adm.route, "lobe": adm.lobe if adm.route == "iah" else None, "nuclide": name,
        "half_life_h": t_half, "activity_mbq": activity_mbq, "peptide_ug": peptide_ug, "peptide": peptide,
        "peptide_nmol": round(adm.peptide_nmol, 4), "infusion_min": infusion_min, "parameters_version": pp.version,
        "units": {"time_courses": "MBq present (physically decayed)", "percent_ia": "% of injected activity, decay-corrected"},
        "times_h": times, "time_courses": courses, "standard_times_h": std, "percent_ia": pia,
        "mass_balance_error": res.mass_balance_error, "peptide_mass_balance_error": res.peptide_balance_error,
    }
    if png is not None:
        from lutarterial.pbpk.plots import plot_time_courses

        plot_time_courses(res, png)
        out["png"] = str(png)
    if as_json:
        _echo_json(out)
        return
    typer.echo(f"{name} {human_number(activity_mbq)} MBq, {human_number(peptide_ug)} ug {peptide}, route {adm.route}"
               + (f" ({adm.lobe})" if adm.route == "iah" else "") + "; %IA (decay-corrected)")
    typer.echo("organ".ljust(22) + "".join(f"{human_number(t) + ' h':>11}" for t in std))
    for organ, row in pia.items():
        typer.echo(organ.ljust(22) + "".join(f"{human_number(row[f'{t:g}']):>11}" for t in std))
    typer.echo(f"mass_balance_error {human_number(res.mass_balance_error)} (label), "
               f"{human_number(res.peptide_balance_error)} (peptide)")
    if png is not None:
        typer.echo(f"figure: {png}")


@pbpk_app.command("predict")
def predict_cmd(
    scenario: str = typer.Option(..., "--scenario", help="kratochwil2010, lutia2024 or lutarterial."),
    n_virtual: int = typer.Option(1000, "--n-virtual", help="Number of virtual patients."),
    seed: int = typer.Option(20240101, "--seed", help="Random seed of the virtual population."),
    params: Path = typer.Option(None, "--params", help="YAML file overriding population parameters."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Predict a packaged scenario on a virtual population (mean, 95 % CI of a trial mean, 95 % PI)."""
    from lutarterial.pbpk.parameters import load_parameters
    from lutarterial.pbpk.scenarios import predict_scenario

    out = predict_scenario(scenario, n_virtual, seed, parameters=load_parameters(params) if params else None)
    if as_json:
        _echo_json(out)
        return
    typer.echo(f"{out['title']} [{out['role']}], {n_virtual} virtual patients, seed {seed}")
    typer.echo(f"iah_iv_tumour_ratio {human_number(out['iah_iv_tumour_ratio'])} (95% CI of a trial mean "
               f"{human_range(*out['ci95'])}; individual 95% PI {human_range(*out['pi95'])})")
    for k, v in out["outputs"].items():
        typer.echo(f"  {k:34s} {human_number(v['mean']):>9}  CI95 {human_range(*v['ci95'])}")
    for k, c in out["comparison"].items():
        typer.echo(f"  vs published {k}: " + ", ".join(f"{name} {_comparison_value(x)}" for name, x in c.items()))
    typer.echo(f"mass_balance_error {human_number(out['mass_balance_error'])}")


def _comparison_value(x: Any) -> str:
    """A published-vs-predicted entry for people: intervals as ``lo-hi``, yes/no for flags."""
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, (list, tuple)):
        return human_range(*x) if len(x) == 2 else ", ".join(human_value(v) for v in x)
    return human_value(x)


def _lobe_of(voi: dict[str, Any]) -> str | None:
    if voi.get("kind") == "extrahepatic":
        return "extrahepatic"
    lobe = str(voi.get("lobe") or "").strip().lower()
    if lobe.startswith("r"):
        return "right"
    if lobe.startswith("l"):
        return "left"
    name = f" {str(voi.get('name') or '').lower()} "
    for side in ("right", "left"):
        if f" {side} " in name or f"{side} lobe" in name:
            return side
    return None


def _suv_of(block: Any) -> float | None:
    if isinstance(block, dict):
        v = block.get("suv_mean")
        if isinstance(v, (int, float)) and math.isfinite(v) and v > 0:
            return float(v)
    return None


def participant_measurement(result: dict[str, Any], *, peptide_ug: float, time_h: float) -> tuple[Any, list[str]]:
    """IvPetMeasurement from an imaging analysis result (comparison ``iv``/``iah`` blocks or a
    single-study ``suv_mean``). Returns it and the notes on what was assumed."""
    from lutarterial.errors import InvalidInputError
    from lutarterial.pbpk.individual import IvPetMeasurement, Lesion

    notes: list[str] = []
    lesions: list[Any] = []
    organs: dict[str, list[float]] = {"liver": [], "spleen": [], "kidney": []}
    healthy: float | None = None
    for voi in result.get("vois") or []:
        if not isinstance(voi, dict):
            continue
        iv = _suv_of(voi.get("iv")) if "iv" in voi else _suv_of(voi)
        iah = _suv_of(voi.get("iah")) if "iah" in voi else None
        if iv is None:
            continue
        kind = voi.get("kind")
        if kind in ("lesion", "extrahepatic"):
            lobe = _lobe_of(voi)
            if lobe is None:
                lobe = "right"
                notes.append(f"lesion {voi.get('name')!r} has no lobe recorded: assigned to the right-lobe compartment")
            vol = (voi.get("iv") or voi).get("volume_ml") if isinstance(voi.get("iv") or voi, dict) else None
            lesions.append(Lesion(str(voi.get("name")), lobe, iv, float(vol) if vol else None, iah))
        elif kind == "liver":
            if str(voi.get("name", "")).strip().lower() == "healthy liver":
                healthy = iv
            organs["liver"].append(iv)
        elif kind in ("spleen", "kidney"):
            organs[kind].append(iv)
    if not lesions:
        raise InvalidInputError("the participant's PET analysis has no lesion with an IV SUV mean")
    mean = {k: (sum(v) / len(v) if v else None) for k, v in organs.items()}
    injected = None
    for st in result.get("studies") or []:
        if isinstance(st, dict) and str(st.get("route", "")).upper() == "IV":
            if st.get("injected_mbq"):
                injected = float(st["injected_mbq"])
            elif st.get("injected_activity_bq"):
                injected = float(st["injected_activity_bq"]) / 1e6
    if injected is None:
        injected = 150.0
        notes.append("IV injected activity not recorded: 150 MBq assumed (SUVs do not depend on it at tracer level)")
    m = IvPetMeasurement(lesions=lesions, liver_suv=healthy if healthy is not None else mean["liver"],
                         spleen_suv=mean["spleen"], kidney_suv=mean["kidney"], activity_mbq=injected,
                         peptide_ug=peptide_ug, time_h=time_h)
    return m, notes


@pbpk_app.command("fit")
def fit_cmd(
    participant: str = typer.Option(..., "--participant", help="Trial number (or database id)."),
    user: str = typer.Option(..., "--user", help="Registry user on whose behalf the prediction is stored."),
    db: str = typer.Option(None, "--db", help=_DB_HELP),
    planned_mbq: float = typer.Option(None, "--planned-mbq", help="Planned IAH 177Lu activity (default: the "
                                      "IAH cycle's activity, else 7400 MBq)."),
    lu_peptide_ug: float = typer.Option(200.0, "--lu-peptide-ug", help="Peptide in the 177Lu administration (ug)."),
    pet_peptide_ug: float = typer.Option(20.0, "--pet-peptide-ug", help="Peptide of the 68Ga PET injection (ug)."),
    pet_time_h: float = typer.Option(1.0, "--pet-time-h", help="PET time after injection (h)."),
    lobe: str = typer.Option(None, "--lobe", help="IAH target: whole (proper hepatic artery), right or left "
                             "(default: from the IAH cycle's artery, else whole)."),
    n_draws: int = typer.Option(300, "--n-draws", help="Posterior x population draws for the prediction intervals."),
    reason: str = typer.Option("PBPK prediction of IAH uptake and doses from the IV PET", "--reason",
                               help="Reason recorded in the audit trail."),
    as_json: bool = typer.Option(False, "--json", help="Print the stored prediction as JSON."),
) -> None:
    """Fit a participant's IV 68Ga PET, predict IAH PET uptake and IAH 177Lu doses; store it (audited)."""
    from sqlalchemy import select

    from lutarterial import __version__
    from lutarterial.errors import InvalidInputError, NotFoundError
    from lutarterial.pbpk.individual import fit_individual
    from lutarterial.registry import services
    from lutarterial.registry.db import Registry
    from lutarterial.registry.models import User, Visit

    if lobe is not None and lobe not in ("whole", "right", "left"):
        raise InvalidInputError(f"--lobe {lobe!r}; valid: whole, right, left")
    if not 20 <= n_draws <= 5000:
        raise InvalidInputError(f"--n-draws {n_draws} must be within 20-5000")
    registry = Registry.open(db)
    try:
        with registry.session() as s:
            u = s.scalars(select(User).where(User.username == user)).first()
            if u is None:
                raise NotFoundError(f"user {user!r} does not exist")
            actor = services.actor_for(s, u.id)
            p = services.get_participant(s, actor, participant)
            rows = [r for r in services.list_analyses(s, actor, p.id) if r.kind != PREDICTION_KIND]
            rows = [r for r in rows if isinstance(r.result, dict) and r.result.get("vois")]
            if not rows:
                raise InvalidInputError(f"{p.trial_number} has no PET analysis with VOIs; attach the IV 68Ga PET "
                                        "analysis first (kind pet_iah_vs_iv or a single-study quantification)")
            source = rows[-1]
            m, notes = participant_measurement(source.result, peptide_ug=pet_peptide_ug, time_h=pet_time_h)
            iah = s.scalars(select(Visit).where(Visit.participant_id == p.id, Visit.kind == "iah_cycle")).first()
            if planned_mbq is None:
                planned_mbq = float(iah.activity_mbq) if iah is not None and iah.activity_mbq else 7400.0
            if lobe is None:
                artery = str(getattr(iah, "artery", "") or "").lower()
                lobe = "right" if "right" in artery else "left" if "left" in artery else "whole"
                notes.append(f"IAH target from the IAH cycle's artery ({artery or 'not recorded'}): {lobe}")
            result = fit_individual(m, planned_lu_mbq=planned_mbq, planned_lu_peptide_ug=lu_peptide_ug,
                                    iah_lobe=lobe, n_draws=n_draws)
            result["notes"] = notes
            result["source_analysis_id"] = source.id
            result["participant"] = p.trial_number
            stored = services.attach_imaging_analysis(
                s, actor, p.id, kind=PREDICTION_KIND, result=result, reason=reason,
                parameters={"engine": "lutarterial.pbpk.individual.fit_individual", "source_analysis_id": source.id,
                            "pet_peptide_ug": pet_peptide_ug, "pet_time_h": pet_time_h, "planned_mbq": planned_mbq,
                            "lu_peptide_ug": lu_peptide_ug, "lobe": lobe},
                software_version=__version__)
            s.flush()
            result["analysis_id"] = stored.id
    finally:
        registry.dispose()
    if as_json:
        _echo_json(result)
        return
    typer.echo("\n".join(fit_lines(result)))


def fit_lines(result: dict[str, Any]) -> list[str]:
    """The text summary of a stored PBPK prediction (numbers for people: 4 significant digits)."""
    lines = [f"{result['participant']}: PBPK prediction stored as analysis {result['analysis_id']} "
             f"(kind {PREDICTION_KIND}, from analysis {result['source_analysis_id']})"]
    for organ, v in result["iah_pet_prediction"].items():
        r = v["iah_iv_ratio"]
        lines.append(f"  IAH/IV {organ:22s} {human_number(r['median'])} (90% PI {human_range(*r['pi90'])})")
    for les in result["lesions"]:
        line = (f"  lesion {les['name']:12s} IV {human_number(les['suv_iv'])} -> IAH predicted "
                f"{human_number(les['predicted_suv_iah'])}")
        if "measured_suv_iah" in les:
            line += (f", measured {human_number(les['measured_suv_iah'])} "
                     f"(measured/predicted {human_number(les['measured_over_predicted'])})")
        lines.append(line)
    for organ, d in result["absorbed_dose_gy"].items():
        lines.append(f"  dose {organ:22s} {human_number(d['median'])} Gy (90% PI {human_range(*d['pi90'])})")
    lines.extend(f"  note: {n}" for n in result.get("notes") or [])
    return lines


@pbpk_app.command("sbml")
def sbml_cmd(
    out: Path = typer.Option(..., "--out", help="SBML file to write."),
    nuclide: str = typer.Option("Lu-177", "--nuclide", help="Nuclide (decay constant of the label)."),
) -> None:
    """Export the typical-patient model as SBML Level 3 (needs python-libsbml)."""
    from lutarterial.pbpk.sbml import write_sbml

    path = write_sbml(out, nuclide=nuclide)
    typer.echo(f"SBML written: {path}")


def register(app: typer.Typer) -> None:
    app.add_typer(pbpk_app, name="pbpk")

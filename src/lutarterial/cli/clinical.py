"""CLI commands for safety and response: ``grade``, ``recist``, ``next-dose``, ``ae-table``.

Each reads one JSON file (formats in docs/clinical.md), prints a Rich table or, with ``--json``,
machine-readable JSON on stdout. Bad input raises :mod:`lutarterial.errors` exceptions, which the
root CLI turns into ``error: ...`` and exit code 2.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

__all__ = ["register"]


def _read_json(path: Path) -> Any:
    from lutarterial.errors import InvalidInputError, NotFoundError

    if not path.is_file():
        raise NotFoundError(f"file not found: {path}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except UnicodeDecodeError:
        raise InvalidInputError(f"{path}: not UTF-8 text") from None


def _print_json(obj: Any) -> None:
    typer.echo(json.dumps(obj, indent=2, ensure_ascii=False))


def _num(x: Any) -> float | None:
    """A number, or a string holding only a plain decimal number ("9.1"); anything else is None."""
    if isinstance(x, str):
        import re

        return float(x) if re.fullmatch(r"\s*\d+(\.\d+)?\s*", x) else None
    if x is None or isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    return float(x)


def grade_command(
    labs_file: Path = typer.Argument(..., help="LABS.json: {patient, labs: [{id, test, value, unit, lln, uln, baseline, date}]}"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    require_baseline: bool = typer.Option(
        False, "--require-baseline",
        help="Withhold grades that depend on a missing baseline (default: grade as if the baseline were normal, "
             "and say so in the row)."),
) -> None:
    """Grade lab values by CTCAE v5.0 (anaemia, counts, creatinine, ALT/AST, bilirubin, albumin, CKD)."""
    from lutarterial.clinical.ctcae import grade_lab
    from lutarterial.errors import InvalidInputError

    doc = _read_json(labs_file)
    if not isinstance(doc, dict) or not isinstance(doc.get("labs"), list):
        raise InvalidInputError(f"{labs_file}: expected an object with a 'labs' list")
    grades = []
    for k, lab in enumerate(doc["labs"]):
        if not isinstance(lab, dict):
            raise InvalidInputError(f"{labs_file}: labs[{k}] must be an object")
        value = lab.get("value")
        g = grade_lab(
            str(lab.get("test", "")), _num(value),
            lab.get("unit") if isinstance(lab.get("unit"), str) else None,
            lln=_num(lab.get("lln")), uln=_num(lab.get("uln")), baseline=_num(lab.get("baseline")),
            baseline_unit=lab.get("baseline_unit"), id=lab.get("id"), date=lab.get("date"),
            require_baseline=require_baseline,
        )
        if value is not None and _num(value) is None:
            g = type(g)(**{**g.__dict__, "reason": f"no grade: value {value!r} is not a number"})
        grades.append(g)
    if as_json:
        _print_json({"patient": doc.get("patient"), "ctcae_version": "5.0", "require_baseline": require_baseline,
                     "grades": [g.to_dict() for g in grades]})
        return
    from rich.console import Console
    from rich.table import Table

    from lutarterial.cli.formatting import human_number

    t = Table(title=f"CTCAE v5.0 grades - patient {doc.get('patient', '?')}")
    for col in ("id", "date", "test", "value", "term", "grade", "baseline", "reason"):
        t.add_column(col, overflow="fold")
    for g in grades:
        t.add_row(str(g.id or ""), str(g.date or ""), g.test,
                  f"{human_number(g.value)} {g.unit}" if g.value is not None else "",
                  g.term or "", "-" if g.grade is None else str(g.grade),
                  "assumed normal" if g.baseline_assumed else "",
                  " and ".join(g.evidence) if g.grade else g.reason)
    console = Console()
    console.print(t)
    if any(g.baseline_assumed for g in grades):
        console.print("baseline 'assumed normal': no baseline was given, so the value was graded against the "
                      "ULN/LLN as if the baseline were normal; --require-baseline withholds such grades.")


def recist_command(
    assessments_file: Path = typer.Argument(..., help="ASSESSMENTS.json: {patient, assessments: [...]} or {patients: [...]}"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    png: Path | None = typer.Option(None, "--png", help="Write a spider plot (% change of target sum) to this PNG file."),
    swimmer_png: Path | None = typer.Option(None, "--swimmer-png", help="Write a swimmer plot to this PNG file."),
    no_confirmation: bool = typer.Option(False, "--no-confirmation", help="Do not require CR/PR confirmation (randomised trials)."),
    sd_min_weeks: float = typer.Option(6.0, "--sd-min-weeks", help="Minimum SD duration from baseline (protocol parameter)."),
) -> None:
    """Evaluate RECIST 1.1 per assessment, best overall response and progression date (also liver-only)."""
    from lutarterial.clinical.recist import RecistOptions, evaluate_recist_scopes, parse_recist_input
    from lutarterial.errors import InvalidInputError

    if sd_min_weeks < 0:
        raise InvalidInputError("--sd-min-weeks must be >= 0")
    doc = _read_json(assessments_file)
    docs = doc.get("patients") if isinstance(doc, dict) and "patients" in doc else [doc]
    if not isinstance(docs, list):
        raise InvalidInputError("'patients' must be a list")
    opts = RecistOptions(confirmation=not no_confirmation, sd_min_weeks=sd_min_weeks)
    results = []
    for d in docs:
        patient, assessments = parse_recist_input(d)
        results.append(evaluate_recist_scopes(assessments, patient=patient, options=opts))
    payloads = []
    for res in results:
        p = res["all"].to_dict()
        p["liver"] = {k: v for k, v in res["liver"].to_dict().items() if k != "baseline_issues"}
        p["extrahepatic"] = {k: v for k, v in res["extrahepatic"].to_dict().items() if k != "baseline_issues"}
        p["options"] = {"confirmation": opts.confirmation, "confirmation_min_days": opts.confirmation_min_days,
                        "sd_min_weeks": opts.sd_min_weeks}
        payloads.append(p)
    if png is not None:
        from lutarterial.clinical.plots import spider_plot_png

        png.write_bytes(spider_plot_png([r["all"] for r in results]))
    if swimmer_png is not None:
        from lutarterial.clinical.plots import swimmer_plot_png

        swimmer_png.write_bytes(swimmer_plot_png([r["all"] for r in results]))
    if as_json:
        _print_json(payloads[0] if len(payloads) == 1 and "patients" not in doc else {"patients": payloads})
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    for p in payloads:
        for scope in ("all", "liver"):
            r = p if scope == "all" else p["liver"]
            t = Table(title=f"RECIST 1.1 - patient {p['patient'] or '?'} - {'all lesions' if scope == 'all' else 'liver only'}")
            for col in ("date", "sum mm", "vs baseline %", "vs nadir %", "target", "non-target", "new", "overall"):
                t.add_column(col)
            for a in r["assessments"]:
                t.add_row(a["date"] + (" (baseline)" if a["baseline"] else ""), _fmt(a["sum_mm"]),
                          _fmt(a["change_from_baseline_pct"]), _fmt(a["change_from_nadir_pct"]), a["target"] or "",
                          a["non_target"] or "", _yes_no(a), a["overall"] or "")
            console.print(t)
            console.print(f"best overall response: [bold]{r['best_overall_response']}[/bold] "
                          f"({r['best_overall_response_reason']}); progression: {r['progression_date'] or '-'}")
        for issue in p["baseline_issues"]:
            console.print(f"[yellow]baseline check:[/yellow] {issue}")


def _yes_no(a: dict[str, Any]) -> str:
    if a["new_lesions"] is None:
        return ""
    return "yes" if a["new_lesions"] else ("equivocal" if a.get("new_lesions_equivocal") else "no")


def _fmt(x: float | None) -> str:
    from lutarterial.cli.formatting import human_number

    return human_number(x)


def next_dose_command(
    history_file: Path = typer.Argument(..., help="HISTORY.json: administrations, labs, adverse events (docs/clinical.md)"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a summary."),
) -> None:
    """Decide the next LUTATHERA administration: 7.4 GBq, 3.7 GBq, withhold or discontinue (label rules)."""
    from lutarterial.clinical.dosing import decide_next_dose, parse_history

    decision = decide_next_dose(parse_history(_read_json(history_file)))
    if as_json:
        _print_json(decision.to_dict())
        return
    from rich.console import Console

    c = Console()
    act = f" at {_fmt(decision.activity_gbq)} GBq" if decision.activity_gbq else ""
    c.print(f"[bold]{decision.decision}{act}[/bold] ({decision.route or 'route not given'}) - patient "
            f"{decision.patient or '?'} on {decision.decision_date}; due {decision.due_date or '-'}, "
            f"delay {_fmt(decision.delay_weeks) if decision.delay_weeks is not None else '-'} weeks")
    for r in decision.rules:
        c.print(f"  {r.rule_id} -> {r.action}: {r.text}")
        for f in r.evidence:
            c.print(f"      {f.date} {f.source} {f.ref}: {f.detail}")
    for w in decision.warnings:
        c.print(f"  [yellow]warning:[/yellow] {w}")


def ae_table_command(
    events_file: Path = typer.Argument(..., help="AES.json: {administrations: [...], adverse_events: [...], labs?: [...]}"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    related_only: bool = typer.Option(False, "--related-only", help="Only events possibly/probably/definitely related."),
    require_baseline: bool = typer.Option(
        False, "--require-baseline",
        help="Do not grade lab values whose grade depends on a missing baseline (default: graded as if normal)."),
) -> None:
    """Adverse events: worst grade per patient and term, and the toxicity table per cycle (IV and IAH)."""
    from lutarterial.clinical.adverse_events import (
        lab_toxicities,
        parse_adverse_events,
        toxicity_table,
        worst_grade_per_patient_term,
    )

    doc = _read_json(events_file)
    events, admins = parse_adverse_events(doc)
    lab_events, ungraded, assumed = lab_toxicities(doc, require_baseline=require_baseline, with_assumed=True)
    events = [*events, *lab_events]
    table = toxicity_table(events, admins, related_only=related_only)
    worst = worst_grade_per_patient_term(e for e in events if not related_only or e.related)
    if as_json:
        _print_json({"worst_grade_per_patient_term": worst, "toxicity_table": table, "ungraded_labs": ungraded,
                     "require_baseline": require_baseline, "labs_baseline_assumed_normal": assumed})
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    w = Table(title="Worst CTCAE grade per patient and term")
    for col in ("patient", "term", "worst grade", "serious", "related", "events"):
        w.add_column(col, overflow="fold")
    for r in worst:
        w.add_row(str(r["patient"]), r["term"], str(r["worst_grade"]), "yes" if r["serious"] else "no",
                  "yes" if r["related"] else "no", ", ".join(r["events"]))
    console.print(w)
    t = Table(title="Toxicity by cycle: patients with the term (of them grade >= 3)")
    t.add_column("term")
    for c in table["cycles"]:
        t.add_column(c)
    for row in table["rows"]:
        t.add_row(row["term"], *[f"{row['cycles'][c]['patients']} ({row['cycles'][c]['grade_3_or_more']})"
                                 for c in table["cycles"]])
    console.print(t)
    console.print(
        "Legend: worst grade = highest CTCAE v5.0 grade of the term for the patient; in the cycle table each cell is "
        "'patients (of them grade >= 3)', each patient counted once per term and cycle at their worst grade there; "
        "IAH pools every intra-arterial hepatic cycle; 'lab:' events are CTCAE-graded lab values (grade >= 1)"
        + ("; lab values without a baseline were graded as if the baseline were normal" if assumed and
           not require_baseline else "") + "."
    )
    if assumed:
        console.print(f"baseline assumed normal for: {', '.join(assumed)}")
    for u in ungraded:
        console.print(f"[yellow]lab not graded:[/yellow] {u['id']} ({u['test']}): {u['reason']}")


def register(app: typer.Typer) -> None:
    """Add this group's commands to the root app."""
    app.command("grade")(grade_command)
    app.command("recist")(recist_command)
    app.command("next-dose")(next_dose_command)
    app.command("ae-table")(ae_table_command)

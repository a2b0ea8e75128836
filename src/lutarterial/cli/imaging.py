"""CLI commands for the imaging part: ``lutarterial quantify`` and ``lutarterial uptake``.

Thin shell over :mod:`lutarterial.imaging`; heavy imports happen inside the commands.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import typer

__all__ = ["register"]


def _parse_time(text: str | None, option: str = "--injection-time") -> datetime | None:
    from lutarterial.errors import InvalidInputError

    if not text:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInputError(f"{option} {text!r}: use ISO 8601, e.g. 2026-03-02T09:05:00") from None


def _load_study(
    image_dir: Path, voi: Path, names: Path | None, *, weight_kg: float | None, height_m: float | None,
    sex: str | None, injected_mbq: float | None, injection_time: str | None, half_life_s: float | None,
    calibrations: Path | None, site: str | None, camera: str | None, collimator: str | None, nuclide: str,
    recovery: Path | None, pvc: bool, no_peak: bool, reference_time: str | None = None,
    series_uid: str | None = None, allow_nonfinite: bool = False,
) -> tuple[Any, Any, Any]:
    from lutarterial.imaging.workflow import quantify_files

    return quantify_files(
        image_dir, voi, names, weight_kg=weight_kg, height_m=height_m, sex=sex, injected_mbq=injected_mbq,
        injection_time=_parse_time(injection_time), half_life_s=half_life_s, calibrations=calibrations, site=site,
        camera=camera, collimator=collimator, nuclide=nuclide, recovery=recovery, pvc=pvc, peak=not no_peak,
        reference_time=_parse_time(reference_time, "--reference-time"), series_uid=series_uid,
        allow_nonfinite=allow_nonfinite,
    )


def _cell(x: Any) -> str:
    """One table cell: 4 significant digits, thousands separators (issue 10: one helper for all tables)."""
    from lutarterial.cli.formatting import human_number

    return "" if x is None else human_number(x)


def _console():  # type: ignore[no-untyped-def]
    import shutil

    from rich.console import Console

    return Console(width=max(120, shutil.get_terminal_size((120, 24)).columns))


def register(app: typer.Typer) -> None:
    """Add this group's commands to the root app."""

    @app.command("quantify")
    def quantify_cmd(
        image_dir: Path = typer.Argument(..., help="DICOM series directory (PT/NM) or NIfTI file (+JSON sidecar)."),
        voi: Path = typer.Option(..., "--voi", help="Labels: NIfTI label map, DICOM SEG or RTSTRUCT."),
        names: Path | None = typer.Option(None, "--names", help='NAMES.json: {"1": {"name": ..., "kind": ...}}'),
        as_json: bool = typer.Option(False, "--json", help="Print JSON on stdout."),
        csv_file: Path | None = typer.Option(None, "--csv", help="Write a CSV table to FILE."),
        png_file: Path | None = typer.Option(None, "--png", help="Write a MIP figure with VOI outlines to FILE."),
        weight_kg: float | None = typer.Option(None, "--weight-kg", help="Body weight (overrides PatientWeight)."),
        height_m: float | None = typer.Option(None, "--height-m", help="Height in m (for SUL and SUVbsa)."),
        sex: str | None = typer.Option(None, "--sex", help="M or F (for SUL)."),
        injected_mbq: float | None = typer.Option(None, "--injected-mbq", help="Injected activity (MBq)."),
        injection_time: str | None = typer.Option(None, "--injection-time", help="ISO 8601 injection datetime."),
        half_life_s: float | None = typer.Option(None, "--half-life-s", help="Radionuclide half-life (s)."),
        calibrations: Path | None = typer.Option(None, "--calibrations", help="SPECT calibration registry CSV."),
        site: str | None = typer.Option(None, "--site", help="SPECT site (default: InstitutionName)."),
        camera: str | None = typer.Option(None, "--camera", help="SPECT camera (default: ManufacturerModelName)."),
        collimator: str | None = typer.Option(None, "--collimator", help="SPECT collimator (default: header)."),
        nuclide: str = typer.Option("Lu-177", "--nuclide", help="SPECT nuclide for the calibration lookup."),
        recovery: Path | None = typer.Option(None, "--recovery", help="Recovery-coefficient CSV (with --pvc)."),
        pvc: bool = typer.Option(False, "--pvc", help="Apply recovery-coefficient partial-volume correction."),
        no_peak: bool = typer.Option(False, "--no-peak", help="Skip SUVpeak."),
        reference_time: str | None = typer.Option(
            None, "--reference-time", help="Decay Bq/mL to this ISO 8601 time (SPECT time points)."),
        ia_lobe: str | None = typer.Option(None, "--ia-lobe", help="Lobar mode (LUTIA): lobe treated intra-arterially."),
        control_lobe: str | None = typer.Option(None, "--control-lobe", help="Lobar mode: control lobe."),
        series_uid: str | None = typer.Option(
            None, "--series-uid", help="SeriesInstanceUID to use when IMAGE_DIR holds several PET/SPECT series."),
        allow_nonfinite: bool = typer.Option(
            False, "--allow-nonfinite", help="Exclude NaN/infinite voxels inside a VOI (with a note) instead of failing."),
    ) -> None:
        """Quantify one PET or SPECT study: volume, mean, max, peak, total activity, %IA, TNR per VOI."""
        from lutarterial.imaging import report

        image, labels, metrics = _load_study(
            image_dir, voi, names, weight_kg=weight_kg, height_m=height_m, sex=sex, injected_mbq=injected_mbq,
            injection_time=injection_time, half_life_s=half_life_s, calibrations=calibrations, site=site,
            camera=camera, collimator=collimator, nuclide=nuclide, recovery=recovery, pvc=pvc, no_peak=no_peak,
            reference_time=reference_time, series_uid=series_uid, allow_nonfinite=allow_nonfinite,
        )
        lobar = None
        if ia_lobe or control_lobe:
            from lutarterial.errors import InvalidInputError
            from lutarterial.imaging.compare import lobar_comparison

            if not (ia_lobe and control_lobe):
                raise InvalidInputError("lobar mode needs both --ia-lobe and --control-lobe")
            lobar = lobar_comparison(metrics, ia_lobe, control_lobe)
        if csv_file:
            csv_file.write_text(report.study_csv(metrics))
        if png_file:
            from lutarterial.imaging.figure import render_png

            png_file.write_bytes(render_png([(image_dir.name, image, labels, metrics)]))
        if as_json:
            doc = report.study_dict(metrics, image)
            if lobar is not None:
                import dataclasses

                doc["lobar"] = report.json_safe(dataclasses.asdict(lobar))
            typer.echo(json.dumps(doc, indent=2, allow_nan=False))
            return
        from rich.table import Table

        t = Table(title=f"{image_dir} ({image.modality}, {image.quantity.value})")
        cols = ["volume_ml", "suv_mean", "suv_max", "suv_peak", "mean_bqml", "percent_ia", "tnr"]
        heads = ["mL", "SUVmean", "SUVmax", "SUVpeak", "Bq/mL", "%IA", "TNR"]
        t.add_column("VOI", no_wrap=True)
        t.add_column("kind", no_wrap=True)
        for h in heads:
            t.add_column(h, justify="right", no_wrap=True)
        for v in metrics.vois:
            t.add_row(v.name, v.kind.value, *(_cell(getattr(v, c)) for c in cols))
        con = _console()
        con.print(t)
        if lobar is not None:
            con.print(f"lobar TNR: {lobar.ia_lobe} {_cell(lobar.tnr_ia)} vs {lobar.control_lobe} "
                      f"{_cell(lobar.tnr_control)}, ratio {_cell(lobar.ratio)}")
        for n in metrics.notes:
            con.print(f"note: {n}")

    @app.command("uptake")
    def uptake_cmd(
        iv: Path = typer.Option(..., "--iv", help="IV study image (DICOM directory or NIfTI)."),
        iv_voi: Path = typer.Option(..., "--iv-voi", help="IV study labels (NIfTI, SEG, RTSTRUCT)."),
        iah: Path = typer.Option(..., "--iah", help="IAH study image."),
        iah_voi: Path = typer.Option(..., "--iah-voi", help="IAH study labels."),
        names: Path | None = typer.Option(None, "--names", help="NAMES.json for both studies."),
        iah_names: Path | None = typer.Option(None, "--iah-names", help="NAMES.json for the IAH study if different."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON on stdout."),
        csv_file: Path | None = typer.Option(None, "--csv", help="Write a CSV table to FILE."),
        png_file: Path | None = typer.Option(None, "--png", help="Write MIPs + waterfall figure to FILE."),
        ia_lobe: str | None = typer.Option(None, "--ia-lobe", help="Lobar mode: lobe treated intra-arterially."),
        control_lobe: str | None = typer.Option(None, "--control-lobe", help="Lobar mode: control lobe."),
        iv_weight_kg: float | None = typer.Option(None, "--iv-weight-kg"),
        iah_weight_kg: float | None = typer.Option(None, "--iah-weight-kg"),
        iv_injected_mbq: float | None = typer.Option(None, "--iv-injected-mbq"),
        iah_injected_mbq: float | None = typer.Option(None, "--iah-injected-mbq"),
        iv_injection_time: str | None = typer.Option(None, "--iv-injection-time"),
        iah_injection_time: str | None = typer.Option(None, "--iah-injection-time"),
        no_peak: bool = typer.Option(False, "--no-peak", help="Skip SUVpeak."),
        iv_series_uid: str | None = typer.Option(None, "--iv-series-uid", help="IV series UID (folder with several)."),
        iah_series_uid: str | None = typer.Option(None, "--iah-series-uid", help="IAH series UID."),
        allow_nonfinite: bool = typer.Option(
            False, "--allow-nonfinite", help="Exclude NaN/infinite voxels inside a VOI (with a note) instead of failing."),
    ) -> None:
        """Compare the IAH and IV studies of one patient: per-VOI IAH/IV ratios and a lesion summary."""
        from lutarterial.imaging import report

        from lutarterial.imaging.workflow import uptake_files

        res = uptake_files(
            iv, iv_voi, iah, iah_voi, names, iah_names=iah_names, ia_lobe=ia_lobe, control_lobe=control_lobe,
            png=png_file is not None, peak=not no_peak, allow_nonfinite=allow_nonfinite,
            iv_overrides=dict(weight_kg=iv_weight_kg, injected_mbq=iv_injected_mbq,
                              injection_time=_parse_time(iv_injection_time), series_uid=iv_series_uid),
            iah_overrides=dict(weight_kg=iah_weight_kg, injected_mbq=iah_injected_mbq,
                               injection_time=_parse_time(iah_injection_time), series_uid=iah_series_uid),
        )
        comp, lobar = res.comparison, res.lobar
        if csv_file:
            csv_file.write_text(report.comparison_csv(comp))
        if png_file and res.png is not None:
            png_file.write_bytes(res.png)
        if as_json:
            typer.echo(json.dumps(report.comparison_dict(comp, lobar), indent=2, allow_nan=False))
            return
        from rich.table import Table

        from lutarterial.cli.formatting import human_range

        t = Table(title="IAH versus IV uptake")
        for c in ("VOI", "kind", "SUVmean IV", "SUVmean IAH", "ratio", "SUVpeak ratio", "TNR IV", "TNR IAH"):
            t.add_column(c, justify="left" if c in ("VOI", "kind") else "right", no_wrap=True)
        for v in comp.vois:
            t.add_row(v.name, v.kind.value, _cell(v.iv.suv_mean), _cell(v.iah.suv_mean), _cell(v.ratio["suv_mean"]),
                      _cell(v.ratio["suv_peak"]), _cell(v.iv.tnr), _cell(v.iah.tnr))
        con = _console()
        con.print(t)
        les = comp.summary.get("lesions")
        if isinstance(les, dict):
            s = les["suv_mean"]
            ci = (f" (95% CI {human_range(s['ci_low'], s['ci_high'])})" if s["ci_low"] is not None else "")
            con.print(f"lesion SUVmean IAH/IV: geometric mean {_cell(s['geometric_mean'])}{ci}, n={s['n']}")
        if lobar:
            for k, r in lobar.items():
                con.print(f"{k.upper()} lobar TNR: {r.ia_lobe} {_cell(r.tnr_ia)} vs {r.control_lobe} "
                          f"{_cell(r.tnr_control)}, ratio {_cell(r.ratio)}")
        for m in comp.messages:
            con.print(f"note: {m}")

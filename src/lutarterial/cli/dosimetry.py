"""CLI commands for the dosimetry part: ``lutarterial dose`` and ``lutarterial kernel``.

``dose`` has two modes: ``--tac TAC.csv`` (VOI activities per time point -> TIA, organ/lesion
dose, BED, cumulative dose against limits) and image mode (``--activity`` maps at several
``--time-h`` with ``--labels``) for voxel dosimetry by dose-voxel-kernel convolution.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import typer

from lutarterial.cli.formatting import human_value
from lutarterial.units_rounding import csv_value

__all__ = ["register"]


def _echo_json(obj: Any) -> None:
    typer.echo(json.dumps(obj, indent=2, allow_nan=False, default=str))


def _write_csv(path: Path, rows: list[dict[str, Any]], cols: list[str]) -> None:
    import csv

    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({c: csv_value(c, r.get(c), CSV_ROUNDING) for c in cols})


#: CSV precision per column (issue 10; docs/dosimetry.md): "dN" N decimals, "sN" N significant digits.
CSV_ROUNDING = {
    "teff_h": "d1", "tia_mbq_h": "s4", "tia_sd_mbq_h": "s3", "mass_g": "d1", "volume_ml": "d2",
    "dose_gy": "d3", "dose_sd_gy": "d3", "electron_dose_gy": "d3", "photon_dose_gy": "d3", "bed_gy": "d3",
    "mean_gy": "d3", "min_gy": "d3", "max_gy": "d3", "d2_gy": "d3", "d50_gy": "d3", "d70_gy": "d3", "d90_gy": "d3",
    "geud_a": "s3", "geud_gy": "d3", "eud_radiobiological_gy": "d3", "bed_mean_gy": "d3",
}


TAC_CSV_COLUMNS = ["voi", "cycle", "kind", "model", "n_points", "teff_h", "tia_mbq_h", "tia_sd_mbq_h", "mass_g",
                   "dose_gy", "dose_sd_gy", "electron_dose_gy", "photon_dose_gy", "bed_gy"]
VOXEL_CSV_COLUMNS = ["voi", "model", "teff_h", "n_voxels", "volume_ml", "tia_mbq_h", "mean_gy", "min_gy", "max_gy", "d2_gy", "d50_gy",
                     "d70_gy", "d90_gy", "geud_a", "geud_gy", "eud_radiobiological_gy", "bed_mean_gy"]


def _limits(kidney_gy: float, kidney_bed_gy: float, marrow_gy: float) -> list[Any]:
    from lutarterial.dosimetry.metrics import Limit, default_limits

    src = {(lm.organ, lm.quantity): lm.source for lm in default_limits()}
    return [Limit("kidney", "dose_gy", kidney_gy, src.get(("kidney", "dose_gy"), "user")),
            Limit("kidney", "bed_gy", kidney_bed_gy, src.get(("kidney", "bed_gy"), "user")),
            Limit("bone_marrow", "dose_gy", marrow_gy, src.get(("bone_marrow", "dose_gy"), "user"))]


def _tac_mode(tac: Path, nuclide: str, model: str, stp: str | None, teff_h: float | None, teff_sd_h: float | None,
              photons: bool, limits: list[Any], rb: dict[str, tuple[float, float]], as_json: bool,
              csv_out: Path | None, plots: Path | None, cycle: str, prior: Path | None) -> None:
    from lutarterial.dosimetry.io import plot_tacs, read_prior_doses_csv, read_tac_csv
    from lutarterial.dosimetry.workflow import tac_dosimetry
    from lutarterial.errors import InvalidInputError

    vois = read_tac_csv(tac, default_cycle=cycle)
    prior_doses = read_prior_doses_csv(prior) if prior is not None else []
    clash = {(c.organ, c.cycle) for c in prior_doses} & {(v.voi, v.cycle) for v in vois}
    if clash:
        raise InvalidInputError(f"cycle(s) given both in the TAC and in --prior-doses: {sorted(clash)}")
    res = tac_dosimetry(vois, nuclide, model, stp, teff_h, teff_sd_h, photons, limits, rb, prior_doses)
    fits = res.pop("_fits")
    if csv_out is not None:
        _write_csv(csv_out, res["vois"], TAC_CSV_COLUMNS)
    if plots is not None:
        plots.mkdir(parents=True, exist_ok=True)
        for cyc in sorted({v.cycle for v in vois}):
            curves = [(v.voi, v.time_h, v.activity_mbq, fits.get((v.voi, v.cycle))) for v in vois if v.cycle == cyc]
            plot_tacs(plots / f"tac_cycle_{cyc}.png", curves)
    if as_json:
        _echo_json(res)
        return
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"{res['nuclide']} dosimetry ({tac.name})")
    for c in ("VOI", "cycle", "model", "Teff (h)", "TIA (MBq·h)", "± sd", "mass (g)", "dose (Gy)", "BED (Gy)"):
        t.add_column(c)

    def f(x: Any, nd: int = 4) -> str:
        return "—" if x is None else human_value(x)

    for r in res["vois"]:
        t.add_row(r["voi"], r["cycle"], r["model"], f(r["teff_h"]), f(r["tia_mbq_h"], 5), f(r["tia_sd_mbq_h"]),
                  f(r["mass_g"]), f(r["dose_gy"]), f(r["bed_gy"]))
    con = Console()
    con.print(t)
    for r in res["vois"]:
        for w in r["warnings"]:
            con.print(f"[yellow]warning[/yellow] {r['voi']} (cycle {r['cycle']}): {w}")
    for c in res["cumulative"]:
        con.print(f"{c['voi']}: cumulative {c['quantity']} {f(c['total'])} vs limit {c['limit']} -> {c['status']}")


def _read_activity(paths: list[Path], nuclide: str, spect: dict[str, Any]) -> tuple[list[Any], list[dict[str, Any]]]:
    """Read activity maps; SPECT in counts (DICOM NM) is calibrated to Bq/mL through the registry.

    The registry is ``spect["calibrations"]`` (a CSV, see lutarterial.imaging.spect) or the packaged
    one; the row is chosen by site/camera/collimator (header InstitutionName, ManufacturerModelName,
    CollimatorGridName unless given) and the acquisition date. Returns the images and, per map, what
    was done (for the report).
    """
    from lutarterial.dosimetry.nuclides import get_nuclide
    from lutarterial.imaging.io import read_image
    from lutarterial.imaging.spect import CalibrationRegistry, calibrate_spect_from_registry
    from lutarterial.imaging.types import Quantity

    nuc = get_nuclide(nuclide).name
    registry: Any = None
    imgs: list[Any] = []
    report: list[dict[str, Any]] = []
    for p in paths:
        im = read_image(p)
        entry: dict[str, Any] = {"path": str(p), "quantity_read": str(getattr(im.quantity, "value", im.quantity))}
        if im.quantity is Quantity.CNTS:
            if registry is None:
                cal_csv = spect.get("calibrations")
                registry = CalibrationRegistry.from_csv(cal_csv) if cal_csv else CalibrationRegistry.packaged()
            im = calibrate_spect_from_registry(im, registry, site=spect.get("site"), camera=spect.get("camera"),
                                               collimator=spect.get("collimator"), nuclide=nuc)
            cal = dict((im.meta or {}).get("calibration") or {})
            entry["calibration"] = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in cal.items()}
            entry["calibration"]["registry"] = str(spect.get("calibrations") or "packaged (synthetic rows only)")
            entry["acquisition_duration_s"] = (im.meta or {}).get("acquisition_duration_s")
        _require_finite_voxels(im, p)
        imgs.append(im)
        report.append(entry)
    return imgs, report


def _require_finite_voxels(im: Any, path: Path) -> None:
    """An activity map with NaN/infinite voxels would give NaN or infinite doses: refuse it by name."""
    import numpy as np

    from lutarterial.errors import InvalidInputError

    bad = int(np.size(im.array) - np.count_nonzero(np.isfinite(im.array)))
    if bad:
        raise InvalidInputError(f"{path}: {bad} voxels are NaN or infinite; fix the activity map "
                                "(a dose needs a finite activity in every voxel)")


def _time_warnings(imgs: list[Any], paths: list[Path], time_h: list[float]) -> list[str]:
    """Compare each --time-h with the header's administration-to-acquisition time, where both exist.

    A warning, not an error: headers often carry a placeholder administration time, but a swapped
    or mistyped time point silently changes every TIA.
    """
    out = []
    for im, p, t in zip(imgs, paths, time_h, strict=True):
        timing = getattr(im, "timing", None)
        inj = getattr(timing, "injection_time", None)
        acq = getattr(im, "acquisition_time", None)
        if inj is None or acq is None:
            continue
        hdr_h = (acq - inj).total_seconds() / 3600.0
        if abs(hdr_h - t) > max(0.5, 0.02 * t):
            out.append(f"{p}: --time-h {t:g} but the header gives {hdr_h:.2f} h from administration "
                       f"(RadiopharmaceuticalStartDateTime) to acquisition; check the time point")
    return out


def _image_mode(activity: list[Path], time_h: list[float], labels: Path, names: Path | None, ct: list[Path],
                nuclide: str, photons: bool, density: bool, out_dir: Path | None, rtdose: bool,
                as_json: bool, voxel_tia: str, model: str, rb: dict[str, tuple[float, float]],
                kernel_source: str = "auto", spect: dict[str, Any] | None = None) -> None:
    from datetime import datetime

    import numpy as np

    from lutarterial.dosimetry.workflow import voxel_dosimetry
    from lutarterial.errors import InvalidInputError
    from lutarterial.imaging.io import read_image, read_labels

    if len(activity) != len(time_h):
        raise InvalidInputError(f"give one --time-h per --activity ({len(activity)} maps, {len(time_h)} times)")
    if ct and len(ct) != len(activity):
        raise InvalidInputError("give either no --ct or one --ct per --activity time point")
    imgs, calibrations = _read_activity(activity, nuclide, spect or {})
    ref = imgs[0]
    g0 = ref.geometry
    maps = [np.asarray(ref.array, float)]
    cts = [read_image(p) for p in ct] if ct else []
    def is_bqml(im: Any) -> bool:
        q = str(getattr(im.quantity, "value", im.quantity)).lower()
        # a NIfTI without a units sidecar is taken as Bq/mL (the documented input of this command)
        return q == "bq/ml" or (q == "other" and (im.meta or {}).get("source") == "nifti"
                                and not (im.meta or {}).get("units"))

    bad = [f"{p.name}: {getattr(im.quantity, 'value', im.quantity)}" for p, im in zip(activity, imgs) if not is_bqml(im)]
    if bad:
        raise InvalidInputError("activity maps must be quantitative, in Bq/mL at scan time (SPECT in counts is "
                                "calibrated through --calibrations/--site/--camera/--collimator); got " + "; ".join(bad))
    from lutarterial.dosimetry.registration import register_rigid_ct, resample_to

    for i, im in enumerate(imgs[1:], start=1):
        tx = None
        if cts:
            tx = register_rigid_ct(cts[0].array, cts[0].geometry, cts[i].array, cts[i].geometry)
        if tx is None and im.geometry.same_grid(g0):
            maps.append(np.asarray(im.array, float))
        else:
            maps.append(resample_to(im.array, im.geometry, g0, tx))
    lm = read_labels(labels, ref, names=names)
    masks = {v.spec.name: v.full(g0.shape) for v in lm.vois}
    kinds = {v.spec.name: str(getattr(v.spec.kind, "value", v.spec.kind)) for v in lm.vois}
    rho = None
    if density and cts:
        from lutarterial.dosimetry.voxel import density_from_hu

        hu = resample_to(cts[0].array, cts[0].geometry, g0, None, default=-1000.0)
        rho = density_from_hu(hu)
    voxel_mm = (g0.spacing_mm[2], g0.spacing_mm[1], g0.spacing_mm[0])  # array axes [k, j, i]
    dose, res = voxel_dosimetry(maps, time_h, voxel_mm, masks, nuclide, rho, photons, voxel_tia=voxel_tia,
                                model=model, kinds=kinds, radiobiology=rb, kernel_source=kernel_source)
    res["time_h"] = list(time_h)
    res["voxel_mm"] = list(voxel_mm)
    res["density_correction"] = rho is not None
    res["activity_calibration"] = calibrations
    res["warnings"] = _time_warnings(imgs, activity, time_h)
    if out_dir is not None:
        from lutarterial.dosimetry.io import plot_dvhs, write_nifti_dose, write_rtdose

        out_dir.mkdir(parents=True, exist_ok=True)
        write_nifti_dose(out_dir / "dose.nii.gz", dose, g0)
        if rtdose:
            meta = dict(ref.meta or {})
            # same patient, study and frame of reference as the source so viewers overlay the dose
            kern = res["kernel"]
            short = (f"kernel Lanconelli 2012 {kern['table_voxel_mm']:g} mm" if kern["source_id"] == "lanconelli2012"
                     else "kernel computed (first principles)")
            write_rtdose(out_dir / "rtdose.dcm", dose, g0, content_datetime=datetime.now(),
                         frame_of_reference_uid=ref.frame_of_reference_uid,
                         study_instance_uid=meta.get("study_uid") or None,
                         patient={"PatientID": str(meta.get("patient_id", ""))},
                         comment=f"{res['nuclide']} absorbed dose (lutarterial), dose-voxel kernel convolution; "
                                 f"kernel source: {kern['source']}"
                                 + (f"; {kern['citation']}" if kern.get("citation") else ""),
                         dose_comment=short)
        plot_dvhs(out_dir / "dvh.png", [(v["voi"], np.array(v["dvh"]["dose_gy"]), np.array(v["dvh"]["volume_fraction"]))
                                        for v in res["vois"]])
        _write_csv(out_dir / "dose.csv", res["vois"], VOXEL_CSV_COLUMNS)
        (out_dir / "dose.json").write_text(json.dumps(res, indent=2), encoding="utf-8")
    if as_json:
        _echo_json(res)
        return
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"{res['nuclide']} voxel dosimetry")
    for c in ("VOI", "voxels", "mean (Gy)", "D2", "D50", "D70", "D90", "max"):
        t.add_column(c)
    for v in res["vois"]:
        t.add_row(v["voi"], human_value(v["n_voxels"]), *(human_value(v[k]) for k in ("mean_gy", "d2_gy", "d50_gy", "d70_gy",
                                                                            "d90_gy", "max_gy")))
    con = Console()
    con.print(t)
    con.print(f"kernel: {res['kernel']['source']}")
    for w in res["warnings"]:
        con.print(f"[yellow]warning[/yellow] {w}")


def register(app: typer.Typer) -> None:
    """Add this group's commands to the root app."""

    @app.command("dose")
    def dose(
        tac: Path | None = typer.Option(None, "--tac", help="CSV voi,time_h,activity_mbq,mass_g[,kind,cycle]."),
        stp: str | None = typer.Option(None, "--stp", help="Single time point: hanscheid2018 or madsen2018."),
        teff_h: float | None = typer.Option(None, "--teff-h", help="Population effective half-life (h) for madsen2018."),
        teff_sd_h: float | None = typer.Option(None, "--teff-sd-h", help="Its standard deviation (h), for the TIA sd."),
        model: str = typer.Option("auto", "--model", help="auto (AICc), mono, mono_uptake, bi, tri_uptake, trapezoid."),
        nuclide: str = typer.Option("Lu-177", "--nuclide"),
        photons: bool = typer.Option(True, "--photons/--no-photons", help="Include the photon self-dose term."),
        kidney_limit_gy: float = typer.Option(23.0, "--kidney-limit-gy"),
        kidney_bed_limit_gy: float = typer.Option(40.0, "--kidney-bed-limit-gy"),
        marrow_limit_gy: float = typer.Option(2.0, "--marrow-limit-gy"),
        kidney_alpha_beta_gy: float = typer.Option(2.6, "--kidney-alpha-beta-gy"),
        kidney_repair_h: float = typer.Option(2.8, "--kidney-repair-h"),
        tumour_alpha_beta_gy: float = typer.Option(10.0, "--tumour-alpha-beta-gy"),
        tumour_repair_h: float = typer.Option(1.5, "--tumour-repair-h"),
        activity: list[Path] = typer.Option([], "--activity", help="Image mode: activity map (Bq/mL), one per time point."),
        time_h: list[float] = typer.Option([], "--time-h", help="Image mode: hours after administration, per --activity."),
        labels: Path | None = typer.Option(None, "--labels", help="Image mode: label map (NIfTI, SEG or RTSTRUCT)."),
        names: Path | None = typer.Option(None, "--names", help="Image mode: JSON label -> {name, kind}."),
        ct: list[Path] = typer.Option([], "--ct", help="Image mode: CT per time point (registration, density)."),
        density: bool = typer.Option(True, "--density/--no-density", help="Image mode: CT density correction."),
        out_dir: Path | None = typer.Option(None, "--out-dir", help="Write dose.nii.gz, rtdose.dcm, CSV, JSON, PNG here."),
        rtdose: bool = typer.Option(True, "--rtdose/--no-rtdose"),
        voxel_tia: str = typer.Option("voi_fit", "--voxel-tia",
                                      help="Image mode: voi_fit (VOI kinetics distributed to voxels) or voxel."),
        csv_out: Path | None = typer.Option(None, "--csv", help="TAC mode: write the per-VOI table as CSV."),
        plots: Path | None = typer.Option(None, "--plots", help="TAC mode: folder for TAC PNG plots."),
        cycle: str = typer.Option("1", "--cycle", help="TAC mode: cycle label for rows without a 'cycle' column (e.g. IAH)."),
        prior_doses: Path | None = typer.Option(None, "--prior-doses",
                                                help="TAC mode: CSV voi,cycle,dose_gy[,teff_h] of earlier cycles, "
                                                     "added to the cumulative dose/BED."),
        calibrations: Path | None = typer.Option(None, "--calibrations",
                                                 help="Image mode: SPECT calibration registry CSV (site,camera,"
                                                      "collimator,nuclide,valid_from,valid_to,cps_per_mbq,time_basis,"
                                                      "source) for NM images in counts; default: the packaged one."),
        site: str | None = typer.Option(None, "--site", help="Image mode: calibration site (default: InstitutionName)."),
        camera: str | None = typer.Option(None, "--camera",
                                          help="Image mode: calibration camera (default: ManufacturerModelName)."),
        collimator: str | None = typer.Option(None, "--collimator",
                                              help="Image mode: collimator (default: CollimatorGridName)."),
        kernel_source: str = typer.Option("auto", "--kernel-source",
                                          help="Image mode: auto (published Lanconelli 2012 kernel where it covers "
                                               "the voxel size, else computed), lanconelli2012 or computed."),
        as_json: bool = typer.Option(False, "--json", help="Machine-readable JSON on stdout."),
    ) -> None:
        """Absorbed dose from a VOI time-activity table (--tac) or from activity images (--activity ... --labels)."""
        from lutarterial.errors import InvalidInputError

        for name, val in (("kidney limit", kidney_limit_gy), ("kidney BED limit", kidney_bed_limit_gy),
                          ("marrow limit", marrow_limit_gy), ("alpha/beta", kidney_alpha_beta_gy),
                          ("repair half-time", kidney_repair_h), ("tumour alpha/beta", tumour_alpha_beta_gy),
                          ("tumour repair half-time", tumour_repair_h)):
            if not (math.isfinite(val) and val > 0):
                raise InvalidInputError(f"{name} must be > 0")
        rb = {"kidney": (kidney_alpha_beta_gy, kidney_repair_h), "tumour": (tumour_alpha_beta_gy, tumour_repair_h)}
        lims = _limits(kidney_limit_gy, kidney_bed_limit_gy, marrow_limit_gy)
        if tac is not None and activity:
            raise InvalidInputError("use either --tac or --activity (image mode), not both")
        if tac is not None:
            _tac_mode(tac, nuclide, model, stp, teff_h, teff_sd_h, photons, lims, rb, as_json, csv_out, plots, cycle,
                      prior_doses)
        elif activity:
            if labels is None:
                raise InvalidInputError("image mode needs --labels")
            _image_mode(activity, time_h, labels, names, ct, nuclide, photons, density, out_dir, rtdose, as_json,
                        voxel_tia, model, rb, kernel_source,
                        {"calibrations": calibrations, "site": site, "camera": camera, "collimator": collimator})
        else:
            raise InvalidInputError("give --tac TAC.csv, or --activity maps with --time-h and --labels")

    @app.command("kernel")
    def kernel(
        nuclide: str = typer.Option("Lu-177", "--nuclide"),
        voxel_mm: float = typer.Option(..., "--voxel-mm", help="Cubic voxel side (mm)."),
        radius_vox: int = typer.Option(5, "--radius-vox", help="Print offsets up to this index."),
        photons: bool = typer.Option(True, "--photons/--no-photons"),
        ic_auger: bool = typer.Option(True, "--ic-auger/--no-ic-auger",
                                      help="Include conversion and Auger electrons (ICRP 107; default). "
                                           "--no-ic-auger reproduces beta+photon Monte-Carlo tables such as "
                                           "Lanconelli et al. 2012."),
        source: str = typer.Option("auto", "--source",
                                   help="auto (published Lanconelli 2012 table where it covers the voxel size, "
                                        "else computed), lanconelli2012 (error if not tabulated) or computed."),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """Print the dose-voxel kernel (S-values, mGy/(MBq*s)) for i >= j >= k >= 0."""
        from lutarterial.dosimetry.kernels import dose_voxel_kernel
        from lutarterial.errors import InvalidInputError

        if not (math.isfinite(voxel_mm) and 0.1 <= voxel_mm <= 50):
            raise InvalidInputError("--voxel-mm must be between 0.1 and 50 mm")
        if not 0 <= radius_vox <= 30:
            raise InvalidInputError("--radius-vox must be 0..30")
        k = dose_voxel_kernel(nuclide, voxel_mm, radius_mm=max(30.0, (radius_vox + 0.5) * voxel_mm) if photons else None,
                              include_photons=photons, include_ic_auger=ic_auger, source=source)
        rows = [r for r in k.octant_table() if r[0] <= radius_vox]
        computed_method = ("Loevinger beta point kernel (energy-normalised)"
                           + (" + IC/Auger absorbed locally" if ic_auger else "")
                           + (" + photon point kernel with energy-conserving linear build-up" if photons else "")
                           + ", integrated over voxel pairs")
        if as_json:
            _echo_json({"nuclide": k.nuclide, "voxel_mm": voxel_mm, "unit": "mGy/(MBq*s)",
                        "source": k.source, "source_id": k.source_id, "citation": k.citation,
                        "table_voxel_mm": k.table_voxel_mm, "table_radius_vox": k.table_radius_vox,
                        "medium": f"soft tissue {k.density_g_cm3} g/cm3", "include_photons": photons,
                        "include_ic_auger": ic_auger,
                        "method": (f"published Monte-Carlo table (DOSXYZnrc) for offsets up to {k.table_radius_vox} "
                                   f"voxels; beyond: {computed_method}") if k.source_id != "computed"
                                  else computed_method,
                        "s_values": [[i, j, kk, v] for i, j, kk, v in rows]})
            return
        from rich.console import Console
        from rich.table import Table

        t = Table(title=f"{k.nuclide} dose-voxel kernel, {voxel_mm} mm voxels, mGy/(MBq·s)")
        for c in ("i", "j", "k", "S"):
            t.add_column(c)
        for i, j, kk, v in rows:
            t.add_row(str(i), str(j), str(kk), human_value(v))
        con = Console()
        con.print(t)
        con.print(f"source: {k.source}")
        if k.citation:
            con.print(k.citation)

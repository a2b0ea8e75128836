"""End-to-end dosimetry from a VOI activity table or from image time points (pure: arrays in, dicts out).

The CLI and the web call these; they return plain JSON-ready dictionaries so every number that
reaches a user has one code path.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from lutarterial.dosimetry.dose import organ_self_dose
from lutarterial.dosimetry.io import VoiTac
from lutarterial.dosimetry.kernels import DoseKernel, dose_voxel_kernel
from lutarterial.dosimetry.kinetics import (
    FitResult,
    fit_tac,
    tia_hanscheid2018,
    tia_madsen2018,
    tia_trapezoid_physical_tail,
)
from lutarterial.dosimetry.metrics import (
    CycleDose,
    Limit,
    bed_monoexponential,
    cumulative_check,
    dose_stats,
    dvh,
    eud_radiobiological,
    geud_niemierko,
    radiobiology_defaults,
)
from lutarterial.dosimetry.nuclides import get_nuclide
from lutarterial.dosimetry.voxel import (
    density_correct,
    dose_from_tia_kernel,
    tia_map_from_timepoints,
    tia_map_from_voi_fits,
)
from lutarterial.errors import InvalidInputError
from lutarterial.imaging.metrics import measured_vois
from lutarterial.imaging.types import VoiKind, VoiSpec, crop_mask

__all__ = ["organ_of", "tac_dosimetry", "voxel_dosimetry", "kernel_provenance", "STP_METHODS", "FIT_MODELS"]

STP_METHODS = ("hanscheid2018", "madsen2018")
FIT_MODELS = ("auto", "mono", "mono_uptake", "bi", "tri_uptake", "trapezoid")


def organ_of(voi: str, kind: str = "organ") -> str:
    """Map a VOI name to the organ used for limits and radiobiology ('kidney', 'bone_marrow', 'tumour')."""
    n = voi.lower()
    if "kidney" in n or "rein" in n:
        return "kidney"
    if "marrow" in n or n in ("bm", "red_marrow"):
        return "bone_marrow"
    if kind == "lesion":
        return "tumour"
    return n


def _fin(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def tac_dosimetry(vois: Sequence[VoiTac], nuclide: str = "Lu-177", model: str = "auto", stp: str | None = None,
                  population_teff_h: float | None = None, population_teff_sd_h: float | None = None,
                  include_photons: bool = True, limits: Sequence[Limit] | None = None,
                  radiobiology: Mapping[str, tuple[float, float]] | None = None,
                  prior_doses: Sequence[CycleDose] = ()) -> dict[str, Any]:
    """TIA, dose, BED per VOI and cycle, and cumulative dose/BED per VOI against limits.

    ``prior_doses`` (e.g. the 4 IV cycles computed earlier) are added to the cumulative sums;
    their ``organ`` field holds the VOI name, matched exactly.

    ``stp`` forces single-time-point methods (each VOI must then have exactly one time point);
    VOIs with one time point and no ``stp`` are an error that says which method to choose.
    """
    nuc = get_nuclide(nuclide)
    if model not in FIT_MODELS:
        raise InvalidInputError(f"unknown model {model!r}; choose from {', '.join(FIT_MODELS)}")
    if stp is not None and stp not in STP_METHODS:
        raise InvalidInputError(f"unknown single-time-point method {stp!r}; choose {' or '.join(STP_METHODS)}")
    if stp == "madsen2018" and population_teff_h is None:
        lacking = sorted({v.voi for v in vois if v.population_teff_h is None})
        if lacking:
            raise InvalidInputError("madsen2018 needs the population effective half-life: give --teff-h or a teff_h "
                                    f"column (missing for {', '.join(lacking)})")
    rows: list[dict[str, Any]] = []
    fits: dict[tuple[str, str], FitResult | None] = {}
    cycles: list[CycleDose] = []
    for v in vois:
        warn: list[str] = []
        fit: FitResult | None = None
        teff: float | None
        sd: float | None
        if stp is not None or len(v.time_h) == 1:
            if len(v.time_h) != 1:
                raise InvalidInputError(f"VOI {v.voi} cycle {v.cycle}: single-time-point method needs exactly one time point, "
                                        f"got {len(v.time_h)}")
            if stp is None:
                raise InvalidInputError(f"VOI {v.voi} cycle {v.cycle} has one time point: choose --stp hanscheid2018 or madsen2018")
            t, a = v.time_h[0], v.activity_mbq[0]
            if stp == "hanscheid2018":
                tia, sd, teff, method = tia_hanscheid2018(t, a), None, None, "hanscheid2018"
                warn.append("Hänscheid 2018 approximation: exact when the scan time equals Teff; Teff unknown, no BED")
            else:
                pop = v.population_teff_h if v.population_teff_h is not None else population_teff_h
                tia, sd = tia_madsen2018(t, a, pop, population_teff_sd_h)  # type: ignore[arg-type]
                teff, method = pop, "madsen2018"
        else:
            if model == "trapezoid":
                fit = tia_trapezoid_physical_tail(v.time_h, v.activity_mbq, nuc.half_life_h)
            else:
                fit = fit_tac(v.time_h, v.activity_mbq, model, physical_half_life_h=nuc.half_life_h)
            tia, sd, teff, method = fit.tia_mbq_h, fit.tia_sd_mbq_h, fit.teff_h, fit.model
            warn.extend(fit.warnings)
        fits[(v.voi, v.cycle)] = fit
        kind = "sphere" if v.kind == "lesion" else "organ"
        sd_dose = organ_self_dose(max(tia, 0.0), v.mass_g, nuc.name, kind=kind, include_photons=include_photons)
        dose = sd_dose.dose_gy
        dose_sd = None if sd is None else sd * sd_dose.s_value_gy_per_mbq_h
        organ = organ_of(v.voi, v.kind)
        rb = (radiobiology or {}).get(organ) or radiobiology_defaults(organ)
        bed = None
        if rb is not None and teff is not None and math.isfinite(teff) and teff > 0:
            bed = float(bed_monoexponential(dose, teff, rb[0], rb[1]))
        rows.append({
            "voi": v.voi, "cycle": v.cycle, "kind": v.kind, "organ": organ, "model": method,
            "teff_h": _fin(teff), "tia_mbq_h": float(tia), "tia_sd_mbq_h": _fin(sd), "mass_g": v.mass_g,
            "dose_gy": float(dose), "dose_sd_gy": _fin(dose_sd), "electron_dose_gy": sd_dose.electron_gy,
            "photon_dose_gy": sd_dose.photon_gy, "s_value_gy_per_mbq_h": sd_dose.s_value_gy_per_mbq_h,
            "bed_gy": bed, "alpha_beta_gy": rb[0] if rb else None, "repair_half_time_h": rb[1] if rb else None,
            "aicc": _fin(fit.aicc) if fit else None,
            "candidates": [{"model": m, "aicc": _fin(a)} for m, a in (fit.candidates if fit else ())],
            "n_points": len(v.time_h), "warnings": warn,
        })
        cycles.append(CycleDose(v.cycle, v.voi, dose, teff))
    # cumulative per VOI (limits matched by organ)
    lims = list(limits) if limits is not None else None
    from lutarterial.dosimetry.metrics import default_limits

    base = lims if lims is not None else list(default_limits())
    checks = []
    cycles.extend(prior_doses)
    known = {v.voi: v.kind for v in vois}
    for voi in dict.fromkeys([v.voi for v in vois] + [c.organ for c in prior_doses]):
        kind = known.get(voi, "organ")
        organ = organ_of(voi, kind)
        voi_lims = [Limit(voi, lm.quantity, lm.limit, lm.source) for lm in base if lm.organ == organ]
        if not voi_lims:
            continue
        voi_cycles = [c for c in cycles if c.organ == voi]
        rb = {voi: ((radiobiology or {}).get(organ) or radiobiology_defaults(organ))} if radiobiology_defaults(organ) or (radiobiology or {}).get(organ) else None
        for chk in cumulative_check(voi_cycles, voi_lims, rb):  # type: ignore[arg-type]
            checks.append({"voi": voi, "organ": organ, "quantity": chk.quantity, "total": _fin(chk.total),
                           "limit": chk.limit, "fraction_of_limit": _fin(chk.fraction_of_limit), "status": chk.status,
                           "reason": chk.reason, "source": chk.source,
                           "cycles": sorted({c.cycle for c in voi_cycles})})
    return {"nuclide": nuc.name, "vois": rows, "cumulative": checks, "_fits": fits}


def voxel_dosimetry(activity_bq_ml: Sequence[np.ndarray], time_h: Sequence[float], voxel_mm: Sequence[float],
                    masks: Mapping[str, np.ndarray], nuclide: str = "Lu-177", density_g_cm3: np.ndarray | None = None,
                    include_photons: bool = True, geud_a: Mapping[str, float] | None = None,
                    tumour_alpha_per_gy: float | None = None, voxel_tia: str = "voi_fit",
                    model: str = "auto", kinds: Mapping[str, str] | None = None,
                    radiobiology: Mapping[str, tuple[float, float]] | None = None,
                    kernel_source: str = "auto") -> tuple[np.ndarray, dict[str, Any]]:
    """Voxel dose (Gy) from registered activity maps, and per-VOI dose statistics.

    ``kernel_source`` selects the dose-voxel kernel (:func:`lutarterial.dosimetry.kernels.dose_voxel_kernel`:
    "auto" = published Lanconelli 2012 values where the database covers the voxel size, else
    computed); the result's ``kernel`` entry records which was used and its citation.

    ``voxel_mm`` in array axis order. Returns (dose map, {"vois": [...], "notes": [...]}) where each
    VOI has the mean, min, max, D2/D50/D70/D90, gEUD (a = 1 unless given) and its VOI-level TIA.
    ``kinds`` (VOI name -> :class:`lutarterial.imaging.types.VoiKind` value) also says which VOIs
    are organs at risk: spleen, marrow, kidney and healthy-liver VOIs are measured — every number
    above, their kinetics, TIA, BED and DVH — on the VOI minus every ``lesion``/``extrahepatic``
    voxel, the same mask as their imaging metrics (:func:`lutarterial.imaging.metrics.measured_vois`),
    with a note in ``notes`` when voxels were excluded; lesions and a drawn liver keep their masks.
    ``voxel_tia``: 'voi_fit' (VOI kinetics fitted, distributed over voxels; default) or 'voxel'
    (per-voxel trapezoid with an exponential tail). With a fitted VOI Teff and radiobiology for
    the VOI's organ (kidney, tumour for ``kinds[name] == 'lesion'``, bone marrow), the mean of
    the voxel BEDs is reported as ``bed_mean_gy``.
    """
    nuc = get_nuclide(nuclide)
    notes: list[str] = []
    masks = _measured_masks(masks, kinds, voxel_mm, notes)
    fits: dict[str, Any] = {}
    if voxel_tia == "voi_fit":
        tia, fits = tia_map_from_voi_fits(activity_bq_ml, time_h, voxel_mm, masks, nuc.half_life_h, model)
    elif voxel_tia == "voxel":
        tia = tia_map_from_timepoints(activity_bq_ml, time_h, voxel_mm, nuc.half_life_h)
    else:
        raise InvalidInputError("voxel_tia must be 'voi_fit' or 'voxel'")
    kernel = dose_voxel_kernel(nuc.name, tuple(float(x) for x in np.broadcast_to(np.asarray(voxel_mm, float), 3)),
                               include_photons=include_photons, source=kernel_source)
    dose = dose_from_tia_kernel(tia, voxel_mm, nuc.name, kernel=kernel)
    if density_g_cm3 is not None:
        dose = density_correct(dose, density_g_cm3)
    out = []
    for name, m in masks.items():
        if m.shape != dose.shape:
            raise InvalidInputError(f"VOI {name}: mask shape {m.shape} differs from image {dose.shape}")
        st = dose_stats(dose, m)
        a = (geud_a or {}).get(name, 1.0)
        edges, frac = dvh(dose, m)
        fit = fits.get(name)
        kin: dict[str, Any] = {"voxel_tia": voxel_tia}
        if isinstance(fit, FitResult):
            kin.update({"model": fit.model, "teff_h": _fin(fit.teff_h), "tia_sd_mbq_h": _fin(fit.tia_sd_mbq_h),
                        "warnings": list(fit.warnings)})
            organ = organ_of(name, (kinds or {}).get(name, "organ"))
            rb = (radiobiology or {}).get(organ) or radiobiology_defaults(organ)
            if rb is not None and fit.teff_h is not None and math.isfinite(fit.teff_h) and fit.teff_h > 0:
                bed_vox = bed_monoexponential(dose[m], fit.teff_h, rb[0], rb[1])
                kin.update({"organ": organ, "bed_mean_gy": float(np.mean(bed_vox)), "alpha_beta_gy": rb[0],
                            "repair_half_time_h": rb[1]})
        elif isinstance(fit, str):
            kin.update({"model": "voxel", "warnings": [f"VOI fit failed ({fit}); voxel trapezoid used"]})
        out.append({**kin,
            "voi": name, "n_voxels": st.n_voxels, "volume_ml": st.n_voxels * float(np.prod(voxel_mm)) * 1e-3,
            "tia_mbq_h": float(tia[m].sum()), "mean_gy": st.mean_gy, "min_gy": st.min_gy, "max_gy": st.max_gy,
            "d2_gy": st.d2_gy, "d50_gy": st.d50_gy, "d70_gy": st.d70_gy, "d90_gy": st.d90_gy,
            "geud_a": a, "geud_gy": geud_niemierko(dose, a, m),
            "eud_radiobiological_gy": (eud_radiobiological(dose, tumour_alpha_per_gy, m)
                                       if tumour_alpha_per_gy else None),
            "dvh": {"dose_gy": edges.tolist(), "volume_fraction": frac.tolist()},
        })
    return dose, {"nuclide": nuc.name, "kernel": kernel_provenance(kernel), "vois": out, "notes": notes}


#: what an organ at risk's excluded voxels leave out of, named in the note (imaging names its own)
DOSE_METRICS = "volume, mean, min, max, D2-D90, DVH, gEUD, EUD, TIA, kinetics, BED"


def _measured_masks(masks: Mapping[str, np.ndarray], kinds: Mapping[str, str] | None,
                    voxel_mm: Sequence[float], notes: list[str]) -> dict[str, np.ndarray]:
    """Each VOI's mask as every per-VOI number measures it (issue 10, item 4).

    Organs at risk (spleen, marrow, kidney, healthy liver) lose every lesion/extrahepatic voxel, by
    the imaging rule itself (:func:`lutarterial.imaging.metrics.measured_vois`; docs/imaging.md,
    "Background VOIs"), so a kidney's dose statistics never include an overlapping lesion's dose.
    Kinds not in :class:`VoiKind` (e.g. "organ") are "other": measured whole.
    """
    full = {}
    for name, m in masks.items():
        m = np.asarray(m, bool)
        if m.ndim != 3:
            raise InvalidInputError(f"VOI {name}: mask must be 3-D, got shape {m.shape}")
        if not m.any():
            raise InvalidInputError(f"VOI {name} is empty")
        full[name] = m
    if not full:
        return full
    shape = next(iter(full.values())).shape
    bad = [n for n, m in full.items() if m.shape != shape]
    if bad:
        raise InvalidInputError(f"VOI {bad[0]}: mask shape {full[bad[0]].shape} differs from {shape}")

    def kind(name: str) -> VoiKind:
        try:
            return VoiKind(str((kinds or {}).get(name, "other")).strip().lower())
        except ValueError:
            return VoiKind.OTHER

    vois = [crop_mask(VoiSpec(i + 1, name, kind(name)), m) for i, (name, m) in enumerate(full.items())]
    vml = float(np.prod(np.broadcast_to(np.asarray(voxel_mm, float), 3))) * 1e-3
    measured = measured_vois(vois, shape, vml, notes, metrics=DOSE_METRICS)
    return {v.spec.name: (full[v.spec.name] if v is orig else v.full(shape))
            for v, orig in zip(measured, vois, strict=True)}


def kernel_provenance(kernel: DoseKernel) -> dict[str, Any]:
    """JSON-ready record of where a dose-voxel kernel's values come from (for reports and RT Dose)."""
    return {"source": kernel.source, "source_id": kernel.source_id, "citation": kernel.citation,
            "table_voxel_mm": kernel.table_voxel_mm, "table_radius_vox": kernel.table_radius_vox,
            "voxel_mm": list(kernel.voxel_mm), "radius_vox": list(kernel.radius_vox),
            "density_g_cm3": kernel.density_g_cm3, "include_photons": kernel.include_photons}

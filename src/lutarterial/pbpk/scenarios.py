"""Packaged scenarios (data/scenarios.yaml): virtual-population predictions and calibration.

``predict_scenario(name, n_virtual, seed)`` samples a virtual population, gives each virtual
patient both arms of the scenario (intra-individual design, as in the trials) and returns the
per-patient outputs with their population summaries:

* ``mean`` over the virtual population, ``pi95`` (2.5-97.5 % of individual patients) and
  ``ci95``: the 95 % range of the mean of a trial of the scenario's size (``trial_size``
  patients drawn from the virtual population, 2,000 resamples with the same seed). Parameter
  uncertainty of the population values is not included (see docs/pbpk.md).

``fit_kratochwil2010`` estimates the arterial first-pass parameter ``ia_tumour_streaming`` so
that the kratochwil2010 scenario reproduces the published mean gain (bisection on a fixed-seed
population); lutia2024 is never used for fitting.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np
import yaml

from lutarterial.errors import InvalidInputError
from lutarterial.pbpk.parameters import PopulationParameters, load_parameters
from lutarterial.pbpk.solver import Administration, SimulationResult, simulate_population

__all__ = ["SCENARIO_NAMES", "Scenario", "get_scenario", "predict_scenario", "fit_kratochwil2010",
           "scenario_outputs"]

MAX_VIRTUAL = 20000


@dataclass(frozen=True)
class Scenario:
    name: str
    spec: Mapping[str, Any]

    @property
    def trial_size(self) -> int:
        return int(self.spec.get("trial_size", 20))

    def administration(self, arm: str) -> Administration:
        a = self.spec["arms"][arm]
        return Administration(route=a["route"], nuclide=self.spec["nuclide"],
                              activity_mbq=float(self.spec["activity_mbq"]), peptide_ug=float(self.spec["peptide_ug"]),
                              lobe=a.get("lobe", "whole"), infusion_min=float(a.get("infusion_min", 1.0)),
                              catheter_spill=float(a.get("catheter_spill", 0.0)), peptide=self.spec["peptide"])


@lru_cache(maxsize=1)
def _raw() -> dict[str, Any]:
    text = resources.files("lutarterial.pbpk").joinpath("data/scenarios.yaml").read_text("utf-8")
    return yaml.safe_load(text)["scenarios"]  # type: ignore[no-any-return]


SCENARIO_NAMES: tuple[str, ...] = tuple(_raw())


def get_scenario(name: str) -> Scenario:
    raw = _raw()
    if name not in raw:
        raise InvalidInputError(f"unknown scenario {name!r}; packaged: {', '.join(raw)}")
    return Scenario(name, raw[name])


def _summary(values: np.ndarray, trial_size: int, rng: np.random.Generator) -> dict[str, Any]:
    v = np.asarray(values, dtype=float)
    idx = rng.integers(0, v.size, size=(2000, min(trial_size, v.size) if v.size > 1 else 1))
    means = v[idx].mean(axis=1)
    return {"mean": round(float(v.mean()), 4), "median": round(float(np.median(v)), 4),
            "ci95": [round(float(np.percentile(means, 2.5)), 4), round(float(np.percentile(means, 97.5)), 4)],
            "pi95": [round(float(np.percentile(v, 2.5)), 4), round(float(np.percentile(v, 97.5)), 4)],
            "n_virtual": int(v.size), "trial_size": trial_size}


def _at(res: SimulationResult, fn: str, organ: str) -> np.ndarray:
    return getattr(res, fn)(organ)[:, -1]


def scenario_outputs(sc: Scenario, iv: SimulationResult, iah: SimulationResult) -> dict[str, np.ndarray]:
    """Per-patient outputs of a scenario from its two simulated arms (last output time = read-out)."""
    out: dict[str, np.ndarray] = {}
    lesions = ("tumour_right", "tumour_left")
    ratio = {o: _at(iah, "suv", o) / _at(iv, "suv", o) for o in (*lesions, "tumour_extrahepatic", "liver_right",
                                                              "liver_left", "spleen", "kidneys")}
    out["iah_iv_tumour_ratio"] = 0.5 * (ratio["tumour_right"] + ratio["tumour_left"])
    out["fraction_lesions_higher"] = 0.5 * ((ratio["tumour_right"] > 1).astype(float)
                                            + (ratio["tumour_left"] > 1).astype(float))
    out["iah_iv_ratio_extrahepatic_tumour"] = ratio["tumour_extrahepatic"]
    liver_iah = _at(iah, "organ_activity", "liver_right") + _at(iah, "organ_activity", "liver_left")
    liver_iv = _at(iv, "organ_activity", "liver_right") + _at(iv, "organ_activity", "liver_left")
    out["iah_iv_ratio_healthy_liver"] = liver_iah / liver_iv
    out["iah_iv_ratio_spleen"] = ratio["spleen"]
    out["iah_iv_ratio_kidneys"] = ratio["kidneys"]
    out["iv_suv_liver_lesions"] = 0.5 * (_at(iv, "suv", "tumour_right") + _at(iv, "suv", "tumour_left"))
    out["iah_suv_liver_lesions"] = 0.5 * (_at(iah, "suv", "tumour_right") + _at(iah, "suv", "tumour_left"))
    if sc.spec.get("compare") == "lobar_tn":
        treated = sc.spec["arms"]["iah"].get("lobe", "right")
        control = "left" if treated == "right" else "right"

        def tn(res: SimulationResult, side: str) -> np.ndarray:
            return _at(res, "suv", f"tumour_{side}") / _at(res, "suv", f"liver_{side}")

        out["tn_treated_lobe"] = tn(iah, treated)
        out["tn_control_lobe"] = tn(iah, control)
        out["tn_gain"] = out["tn_treated_lobe"] / out["tn_control_lobe"]
        out["fraction_patients_tn_gain_above_1"] = (out["tn_gain"] > 1.0).astype(float)
        out["iah_iv_tumour_ratio"] = ratio[f"tumour_{treated}"]  # treated-lobe lesions vs the same patient IV
        out["iah_iv_ratio_control_lobe_tumour"] = ratio[f"tumour_{control}"]
    return out


def predict_scenario(name: str, n_virtual: int = 1000, seed: int = 20240101, *,
                     parameters: PopulationParameters | None = None) -> dict[str, Any]:
    """Virtual-population prediction of a packaged scenario (see module docstring)."""
    if not 1 <= n_virtual <= MAX_VIRTUAL:
        raise InvalidInputError(f"--n-virtual must be 1-{MAX_VIRTUAL}, got {n_virtual}")
    sc = get_scenario(name)
    pp = parameters or load_parameters()
    rng = np.random.default_rng(seed)
    params = pp.sample(n_virtual, rng)
    t = [float(sc.spec["readout_h"])]
    iv = simulate_population(params, sc.administration("iv"), t)
    iah = simulate_population(params, sc.administration("iah"), t)
    per = scenario_outputs(sc, iv, iah)
    srng = np.random.default_rng(seed + 1)
    outputs = {k: _summary(v, sc.trial_size, srng) for k, v in per.items()}
    main = outputs["iah_iv_tumour_ratio"]
    result: dict[str, Any] = {
        "scenario": name, "role": sc.spec.get("role"), "title": sc.spec.get("title"), "source": sc.spec.get("source"),
        "nuclide": sc.spec["nuclide"], "peptide": sc.spec["peptide"], "activity_mbq": sc.spec["activity_mbq"],
        "peptide_ug": sc.spec["peptide_ug"], "readout_h": sc.spec["readout_h"], "n_virtual": n_virtual, "seed": seed,
        "iah_iv_tumour_ratio": main["mean"], "ci95": main["ci95"], "pi95": main["pi95"],
        "outputs": outputs, "published": sc.spec.get("published", {}),
        "mass_balance_error": max(iv.mass_balance_error, iah.mass_balance_error),
        "parameters_version": pp.version,
    }
    pub = sc.spec.get("published") or {}
    checks: dict[str, Any] = {}
    if "iah_iv_tumour_ratio" in pub:
        target = pub["iah_iv_tumour_ratio"]
        checks["iah_iv_tumour_ratio"] = {"published": target["mean"], "predicted": main["mean"],
                                         "tolerance": target["tolerance"],
                                         "reproduced": abs(main["mean"] - target["mean"]) <= target["tolerance"]}
    if "fraction_patients_tn_gain_above_1" in pub:
        checks["fraction_patients_tn_gain_above_1"] = {
            "published": pub["fraction_patients_tn_gain_above_1"]["value"],
            "predicted": outputs["fraction_patients_tn_gain_above_1"]["mean"]}
    if "tn_gain" in pub:
        lo, hi = pub["tn_gain"]["ci95"]
        g = outputs["tn_gain"]
        checks["tn_gain"] = {"published_mean": pub["tn_gain"]["mean"], "published_ci95": [lo, hi],
                             "predicted": g["mean"], "predicted_ci95": g["ci95"],
                             "within_published_ci": bool(lo <= g["mean"] <= hi)}
        result["tn_gain"] = g["mean"]
        result["tn_gain_ci95"] = g["ci95"]
    result["comparison"] = checks
    return result


def fit_kratochwil2010(n_virtual: int = 200, seed: int = 20100601, *, lo: float = 0.5, hi: float = 8.0,
                       tol: float = 0.01) -> dict[str, float]:
    """Fit ``ia_tumour_streaming`` so the kratochwil2010 mean IA/IV lesion SUV gain is 3.75.

    Bisection on a fixed-seed virtual population (the gain rises monotonically with streaming).
    Returns the fitted value and the gain it gives; the packaged YAML holds the result.
    """
    sc = get_scenario("kratochwil2010")
    target = float(sc.spec["published"]["iah_iv_tumour_ratio"]["mean"])
    base = load_parameters()
    rng = np.random.default_rng(seed)
    params = base.sample(n_virtual, rng)
    z = params["ia_tumour_streaming"] / base.specs["ia_tumour_streaming"].value  # keep the variability
    t = [float(sc.spec["readout_h"])]
    iv = simulate_population(params, sc.administration("iv"), t)

    def gain(s: float) -> float:
        p = {**params, "ia_tumour_streaming": s * z}
        iah = simulate_population(p, sc.administration("iah"), t)
        return float(scenario_outputs(sc, iv, iah)["iah_iv_tumour_ratio"].mean())

    g_lo, g_hi = gain(lo), gain(hi)
    if not g_lo <= target <= g_hi:
        raise InvalidInputError(f"kratochwil2010 target {target} not bracketed: gain {g_lo:.2f}-{g_hi:.2f}")
    mid, g_mid = lo, g_lo
    for _ in range(30):
        mid = 0.5 * (lo + hi)
        g_mid = gain(mid)
        if abs(g_mid - target) < tol:
            break
        if g_mid < target:
            lo = mid
        else:
            hi = mid
    return {"ia_tumour_streaming": round(mid, 3), "iah_iv_tumour_ratio": round(g_mid, 3), "target": target}


def mechanisms_lutia2024(n_virtual: int = 100, seed: int = 7) -> dict[str, float]:
    """Which mechanism shrinks the arterial gain: the lutia2024 prediction with one design
    feature changed at a time toward the Kratochwil (tracer) design. Mean T/N gain per variant;
    the same virtual population in every variant."""
    from dataclasses import replace

    sc = get_scenario("lutia2024")
    params = load_parameters().sample(n_virtual, np.random.default_rng(seed))

    def gain(peptide_ug: float, infusion_min: float, readout_h: float) -> float:
        spec = {**sc.spec, "peptide_ug": peptide_ug, "readout_h": readout_h,
                "arms": {"iah": {**sc.spec["arms"]["iah"], "infusion_min": infusion_min},
                         "iv": sc.spec["arms"]["iv"]}}
        s2 = replace(sc, spec=spec)
        iah = simulate_population(params, s2.administration("iah"), [readout_h])
        iv = simulate_population(params, s2.administration("iv"), [readout_h])
        return round(float(scenario_outputs(s2, iv, iah)["tn_gain"].mean()), 3)

    return {
        "lutia2024 as designed (200 ug, 20 min infusion, 24 h)": gain(200.0, 20.0, 24.0),
        "tracer peptide mass (5 ug)": gain(5.0, 20.0, 24.0),
        "bolus (1 min)": gain(200.0, 1.0, 24.0),
        "read-out at 1 h": gain(200.0, 20.0, 1.0),
        "tracer mass + bolus": gain(5.0, 1.0, 24.0),
        "tracer mass + bolus + 1 h (Kratochwil-like timing)": gain(5.0, 1.0, 1.0),
    }


__all__ += ["mechanisms_lutia2024"]

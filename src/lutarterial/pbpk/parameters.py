"""PBPK parameters as data: load ``data/parameters.yaml`` (or a user file), check, sample.

A parameter file lists each parameter with its population value, unit, between-subject
variability (``cv``: log-normal CV; for ``kind: fraction`` the SD on the logit scale) and source.
Everything is checked on load: a negative or non-finite value, a fraction outside 0-1, an
unknown name or a wrong unit is an :class:`~lutarterial.errors.InvalidInputError` naming the
entry. A user file may override a subset (``parameters: {name: value}`` or ``{name: {value: ..}}``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from lutarterial.errors import InvalidInputError

__all__ = [
    "ParameterSpec",
    "PopulationParameters",
    "load_parameters",
    "half_life_h",
    "peptide_molar_mass",
    "NUCLIDES",
]

#: Nuclides the model simulates (the issue's list); others are refused.
NUCLIDES = ("Ga-68", "Lu-177", "In-111", "Y-90")


@dataclass(frozen=True)
class ParameterSpec:
    """One parameter: population value, unit, variability and source."""

    name: str
    value: float
    unit: str
    cv: float
    fraction: bool
    source: str


@dataclass(frozen=True)
class PopulationParameters:
    """A checked parameter table (population values + variability)."""

    specs: Mapping[str, ParameterSpec]
    version: str

    def typical(self) -> dict[str, float]:
        return {k: s.value for k, s in self.specs.items()}

    def with_values(self, values: Mapping[str, float], *, source: str = "user") -> PopulationParameters:
        """A copy with some population values replaced (checked like the file)."""
        new = dict(self.specs)
        for name, v in values.items():
            if name not in new:
                raise InvalidInputError(f"unknown PBPK parameter {name!r}; see docs/pbpk.md for the list")
            old = new[name]
            new[name] = ParameterSpec(name, _check_value(name, v, old.fraction), old.unit, old.cv, old.fraction,
                                      source)
        _check_consistency({k: s.value for k, s in new.items()})
        return PopulationParameters(new, self.version)

    def sample(self, n: int, rng: np.random.Generator | None, *, variability: bool = True) -> dict[str, np.ndarray]:
        """``n`` virtual patients: each parameter an array of shape (n,).

        Positive parameters are log-normal around the typical value (CV -> sigma via
        sqrt(log(1+CV^2)), median = typical value); fractions are logit-normal. The first
        patient is not special; pass ``variability=False`` for n copies of the typical patient.
        """
        if n < 1:
            raise InvalidInputError(f"number of virtual patients must be >= 1, got {n}")
        out: dict[str, np.ndarray] = {}
        for name, s in self.specs.items():
            if not variability or s.cv == 0.0 or s.value == 0.0 or rng is None:
                out[name] = np.full(n, s.value)
            elif s.fraction:
                if s.value >= 1.0:
                    out[name] = np.full(n, s.value)
                    continue
                z = math.log(s.value / (1.0 - s.value)) + s.cv * rng.standard_normal(n)
                out[name] = 1.0 / (1.0 + np.exp(-z))
            else:
                sigma = math.sqrt(math.log1p(s.cv * s.cv))
                out[name] = s.value * np.exp(sigma * rng.standard_normal(n))
        return out


def _check_value(name: str, value: Any, fraction: bool) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InvalidInputError(f"PBPK parameter {name}: {value!r} is not a number") from None
    if not math.isfinite(v):
        raise InvalidInputError(f"PBPK parameter {name}: {v} is not finite")
    if v < 0:
        raise InvalidInputError(f"PBPK parameter {name}: {v} is negative")
    if fraction and v > 1.0:
        raise InvalidInputError(f"PBPK parameter {name}: fraction {v} is outside 0-1")
    return v


def _check_consistency(v: Mapping[str, float]) -> None:
    flows = sum(v[k] for k in v if k.startswith("flow_fraction_"))
    if flows >= 1.0:
        raise InvalidInputError(f"PBPK parameters: organ flow fractions sum to {flows:.3f}; they must leave "
                                "a positive remainder for the rest of the body")
    for organ in ("liver", "lungs", "gut", "spleen", "kidneys", "red_marrow", "rest"):
        s = v[f"vascular_fraction_{organ}"] + v[f"interstitial_fraction_{organ}"]
        if s > 1.0:
            raise InvalidInputError(f"PBPK parameters: vascular + interstitial fraction of {organ} is {s:.3f} > 1")
    if v["tumour_vascular_fraction"] + v["tumour_interstitial_fraction"] > 1.0:
        raise InvalidInputError("PBPK parameters: tumour vascular + interstitial fraction > 1")
    for k in ("cardiac_output_l_per_h", "blood_volume_l", "body_mass_kg", "volume_liver_l", "k_on_l_per_nmol_h"):
        if v[k] <= 0:
            raise InvalidInputError(f"PBPK parameter {k} must be > 0")


def _parse(raw: Any, origin: str) -> PopulationParameters:
    if not isinstance(raw, dict) or not isinstance(raw.get("parameters"), dict):
        raise InvalidInputError(f"{origin}: expected a mapping with a 'parameters' section")
    specs: dict[str, ParameterSpec] = {}
    for name, d in raw["parameters"].items():
        if not isinstance(d, dict) or "value" not in d:
            raise InvalidInputError(f"{origin}: parameter {name!r} needs value, unit, cv and source")
        fraction = d.get("kind") == "fraction"
        value = _check_value(name, d["value"], fraction)
        cv = _check_value(f"{name} (cv)", d.get("cv", 0.0), False)
        unit, source = str(d.get("unit", "")), str(d.get("source", "")).strip()
        if not source:
            raise InvalidInputError(f"{origin}: parameter {name!r} has no source")
        specs[name] = ParameterSpec(str(name), value, unit, cv, fraction, source)
    _check_consistency({k: s.value for k, s in specs.items()})
    return PopulationParameters(specs, str(raw.get("version", "")))


@lru_cache(maxsize=1)
def _packaged_raw() -> dict[str, Any]:
    text = resources.files("lutarterial.pbpk").joinpath("data/parameters.yaml").read_text("utf-8")
    return yaml.safe_load(text)  # type: ignore[no-any-return]


def load_parameters(path: str | Path | None = None) -> PopulationParameters:
    """The packaged population parameters, optionally overridden by a user YAML file.

    The user file holds ``parameters:`` with ``name: value`` or ``name: {value: .., cv: ..}``;
    names must exist in the packaged table and keep their unit (a ``unit`` given must match).
    """
    base = _parse(_packaged_raw(), "pbpk/data/parameters.yaml")
    if path is None:
        return base
    p = Path(path)
    if not p.is_file():
        raise InvalidInputError(f"parameter file {p} does not exist")
    try:
        raw = yaml.safe_load(p.read_text("utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"parameter file {p} is not valid YAML: {exc}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("parameters"), dict):
        raise InvalidInputError(f"parameter file {p}: expected a mapping with a 'parameters' section")
    specs = dict(base.specs)
    for name, d in raw["parameters"].items():
        if name not in specs:
            raise InvalidInputError(f"parameter file {p}: unknown PBPK parameter {name!r}")
        old = specs[name]
        if isinstance(d, dict):
            if "unit" in d and str(d["unit"]) != old.unit:
                raise InvalidInputError(f"parameter file {p}: {name} must be in {old.unit!r}, not {d['unit']!r}")
            value = _check_value(name, d.get("value", old.value), old.fraction)
            cv = _check_value(f"{name} (cv)", d.get("cv", old.cv), False)
            source = str(d.get("source") or f"user file {p.name}")
        else:
            value, cv, source = _check_value(name, d, old.fraction), old.cv, f"user file {p.name}"
        specs[name] = ParameterSpec(name, value, old.unit, cv, old.fraction, source)
    _check_consistency({k: s.value for k, s in specs.items()})
    return PopulationParameters(specs, f"{base.version}+{p.name}")


def half_life_h(nuclide: str) -> tuple[str, float]:
    """Canonical name and half-life (h) of a nuclide the model supports.

    Ga-68, Lu-177 and Y-90 come from :mod:`lutarterial.dosimetry.nuclides`; In-111 from this
    package's data file. Anything else is refused with the list of supported nuclides.
    """
    key = nuclide.strip().lower().replace("-", "").replace("_", "")
    digits = "".join(c for c in key if c.isdigit())
    letters = "".join(c for c in key if c.isalpha())
    canon = {n.lower().replace("-", ""): n for n in NUCLIDES}
    name = canon.get(letters + digits)
    if name is None:
        raise InvalidInputError(f"nuclide {nuclide!r} has no decay data in the PBPK model; "
                                f"supported: {', '.join(NUCLIDES)}")
    extra = _packaged_raw().get("nuclides", {})
    if name in extra:
        return name, float(extra[name]["half_life_h"])
    from lutarterial.dosimetry.nuclides import get_nuclide

    return name, get_nuclide(name).half_life_h


def peptide_molar_mass(peptide: str) -> float:
    """Molar mass (g/mol) of a known peptide (DOTATATE, DOTATOC, DTPA-octreotide)."""
    table = _packaged_raw().get("peptides", {})
    for name, d in table.items():
        if name.lower() == peptide.strip().lower():
            return float(d["molar_mass_g_per_mol"])
    raise InvalidInputError(f"unknown peptide {peptide!r}; known: {', '.join(table)}")

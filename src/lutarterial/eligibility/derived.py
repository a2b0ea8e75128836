"""Derived measures used by screening: age, creatinine clearance, Child-Pugh score.

Each method is named after its source and cites it. Inputs carry their units in their
names; conversions happen before these functions are called (``lutarterial.units``).
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass

from lutarterial.errors import InvalidInputError

__all__ = [
    "age_years",
    "age_range_years",
    "crcl_cockcroft_gault_1976",
    "ChildPugh",
    "child_pugh_pugh1973",
    "ASCITES_GRADES",
    "ENCEPHALOPATHY_GRADES",
]

ASCITES_GRADES = ("none", "mild", "moderate_severe")
ENCEPHALOPATHY_GRADES = ("none", "grade_1_2", "grade_3_4")


def age_years(birth_date: _dt.date, on: _dt.date) -> int:
    """Age in completed years on ``on`` (a 29 February birthday counts on 1 March in common years)."""
    if on < birth_date:
        raise InvalidInputError(f"birth date {birth_date.isoformat()} is after {on.isoformat()}")
    years = on.year - birth_date.year
    if (on.month, on.day) < (birth_date.month, birth_date.day):
        years -= 1
    return years


def age_range_years(birth_date: _dt.date, precision: str, on: _dt.date) -> tuple[int, int]:
    """(youngest, oldest) possible completed-years age for a possibly partial birth date.

    ``birth_date`` is the first possible day; ``precision`` is ``day``, ``month`` or ``year``.
    """
    if precision == "day":
        a = age_years(birth_date, on)
        return a, a
    if precision == "month":
        nxt = _dt.date(birth_date.year + (birth_date.month == 12), birth_date.month % 12 + 1, 1)
        last = nxt - _dt.timedelta(days=1)
    elif precision == "year":
        last = _dt.date(birth_date.year, 12, 31)
    else:
        raise InvalidInputError(f"unknown birth date precision {precision!r}")
    youngest = age_years(min(last, on), on) if last <= on else 0
    return youngest, age_years(birth_date, on)


def crcl_cockcroft_gault_1976(*, age_years: int, weight_kg: float, creatinine_mg_per_dl: float, female: bool) -> float:
    """Creatinine clearance in mL/min by Cockcroft and Gault.

    CrCl = (140 - age) x weight / (72 x serum creatinine), x 0.85 for women.
    Source: Cockcroft DW, Gault MH. Prediction of creatinine clearance from serum creatinine.
    Nephron 1976;16(1):31-41. doi:10.1159/000180580. Age in years, actual body weight in kg,
    serum creatinine in mg/dL; the result is not normalised to body surface area.
    """
    if not 0 <= age_years <= 140:
        raise InvalidInputError(f"age {age_years} years is outside the formula's range (0-140)")
    if not weight_kg > 0:
        raise InvalidInputError(f"weight {weight_kg} kg must be positive")
    if not creatinine_mg_per_dl > 0:
        raise InvalidInputError(f"serum creatinine {creatinine_mg_per_dl} mg/dL must be positive")
    crcl = (140 - age_years) * weight_kg / (72.0 * creatinine_mg_per_dl)
    return crcl * 0.85 if female else crcl


@dataclass(frozen=True, slots=True)
class ChildPugh:
    """A Child-Pugh score with its points per component and its class (A 5-6, B 7-9, C 10-15)."""

    score: int
    points: dict[str, int]

    @property
    def grade(self) -> str:
        return "A" if self.score <= 6 else ("B" if self.score <= 9 else "C")

    @property
    def label(self) -> str:
        return f"{self.grade}{self.score}"


def child_pugh_pugh1973(
    *,
    bilirubin_umol_per_l: float | None = None,
    bilirubin_mg_per_dl: float | None = None,
    albumin_g_per_l: float,
    inr: float,
    ascites: str,
    encephalopathy: str,
) -> ChildPugh:
    """Child-Pugh score (5-15) from its five components.

    Source: Pugh RNH, Murray-Lyon IM, Dawson JL, Pietroni MC, Williams R. Transection of the
    oesophagus for bleeding oesophageal varices. Br J Surg 1973;60(8):646-649.
    doi:10.1002/bjs.1800600817. Points 1 / 2 / 3: bilirubin < 34 / 34-50 / > 50 umol/L
    (the SI form of Pugh's < 2 / 2-3 / > 3 mg per 100 mL); albumin > 35 / 28-35 / < 28 g/L;
    ascites none / mild / moderate-severe; encephalopathy none / grade 1-2 / grade 3-4.
    Pugh scored prothrombin-time prolongation (1-4 / 4-6 / > 6 s); we use its usual INR
    equivalent < 1.7 / 1.7-2.3 / > 2.3, as labs report INR. Boundary values belong to the
    middle band (34 and 50 umol/L, 28 and 35 g/L, INR 1.7 and 2.3 score 2 points).

    Give bilirubin in the unit the lab reported: ``bilirubin_mg_per_dl`` is scored on Pugh's
    own cut-offs (< 2 / 2-3 / > 3 mg/dL), ``bilirubin_umol_per_l`` on the SI table (34 / 50);
    the two tables disagree between 34.0 and 34.2 and between 50 and 51.3 umol/L, and a
    clinician scores with the table in the unit of the report.
    """
    if (bilirubin_umol_per_l is None) == (bilirubin_mg_per_dl is None):
        raise InvalidInputError("give bilirubin in exactly one unit (umol/L or mg/dL)")
    if ascites not in ASCITES_GRADES:
        raise InvalidInputError(f"ascites {ascites!r} must be one of {ASCITES_GRADES}")
    if encephalopathy not in ENCEPHALOPATHY_GRADES:
        raise InvalidInputError(f"encephalopathy {encephalopathy!r} must be one of {ENCEPHALOPATHY_GRADES}")
    bili = bilirubin_umol_per_l if bilirubin_umol_per_l is not None else bilirubin_mg_per_dl
    for name, v in (("bilirubin", bili), ("albumin", albumin_g_per_l), ("INR", inr)):
        if not v > 0:  # type: ignore[operator]
            raise InvalidInputError(f"{name} {v} must be positive")
    # Round away float noise from unit conversion (e.g. 3.5 g/dL -> 35.000000000000004 g/L).
    bili_v, alb_v, inr_v = (round(v, 9) for v in (bili, albumin_g_per_l, inr))  # type: ignore[arg-type]
    low, high = (34, 50) if bilirubin_umol_per_l is not None else (2, 3)
    points = {
        "bilirubin": 1 if bili_v < low else (2 if bili_v <= high else 3),
        "albumin": 1 if alb_v > 35 else (2 if alb_v >= 28 else 3),
        "inr": 1 if inr_v < 1.7 else (2 if inr_v <= 2.3 else 3),
        "ascites": ASCITES_GRADES.index(ascites) + 1,
        "encephalopathy": ENCEPHALOPATHY_GRADES.index(encephalopathy) + 1,
    }
    return ChildPugh(score=sum(points.values()), points=points)

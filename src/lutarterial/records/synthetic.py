"""Synthetic own-format screening records, reproducible from a seed.

Why: benchmarks, demos and tests need realistic cohorts without patient data. Records mix
French and SI units, vary every criterion and include the three verdicts (eligible,
ineligible, incomplete). Values are plausible, not epidemiological. Nothing here reads the
clock: dates derive from ``screening_date``.
"""

from __future__ import annotations

import datetime as _dt
import random
from typing import Any

__all__ = ["make_record", "make_records"]

_D = _dt.timedelta


def _lab(analyte: str, value: float, unit: str, day: _dt.date, **ref: float) -> dict[str, Any]:
    m: dict[str, Any] = {"analyte": analyte, "value": round(value, 3), "unit": unit, "date": day.isoformat()}
    if "high" in ref:
        m["reference_high"] = ref["high"]
    if "low" in ref:
        m["reference_low"] = ref["low"]
    return m


def make_record(rng: random.Random, index: int, screening_date: _dt.date) -> dict[str, Any]:
    """One record; about half eligible, the rest failing or missing one or more criteria."""
    profile = rng.random()  # < 0.5 clean; < 0.8 one failure; else one gap
    sex = rng.choice(("female", "male"))
    age = rng.randint(35, 84)
    birth = screening_date - _D(days=int(age * 365.25) + rng.randint(0, 300))
    first_cycle = screening_date - _D(days=rng.randint(230, 300))
    cycles = [
        {"date": (first_cycle + _D(weeks=8 * k)).isoformat(), "route": "IV", "activity_mbq": 7400.0,
         "dose_reduced_for_toxicity": False, "cancelled_for_toxicity": False}
        for k in range(4)
    ]
    last_cycle = first_cycle + _D(weeks=24)
    lab_day = screening_date - _D(days=rng.randint(0, 20))
    hb_unit = rng.choice(("g/dL", "g/L", "mmol/L"))
    hb = rng.uniform(9.0, 14.0)
    hb_value = {"g/dL": hb, "g/L": hb * 10, "mmol/L": hb * 0.6206}[hb_unit]
    count_unit = rng.choice(("G/L", "/mm3", "10*9/L"))
    per = 1000.0 if count_unit == "/mm3" else 1.0
    cr_unit = rng.choice(("umol/L", "mg/dL"))
    cr_umol = rng.uniform(55, 110)
    record: dict[str, Any] = {
        "record_id": f"SYN-{index:06d}",
        "screening_date": screening_date.isoformat(),
        "site": rng.choice(("Bordeaux", "Pessac", "Nîmes", "Toulouse")),
        "patient": {"birth_date": birth.isoformat(), "sex": sex,
                    **({"menopausal_status": "post" if age > 55 else "pre"} if sex == "female" else {})},
        "tumour": {"histologically_proven": True, "differentiation": "well",
                   "primary_origin": rng.choice(("pancreas", "ileum", "small_intestine", "rectum"))},
        "disease": {"progression_on_ssa": True,
                    "progression_date": (first_cycle - _D(days=rng.randint(20, 200))).isoformat(),
                    "hepatic_invasion_percent": float(rng.randint(10, 80))},
        "lutathera_cycles": cycles,
        "post_therapy_scans": [{"date": (last_cycle + _D(days=1)).isoformat(), "residual_uptake": True}],
        "inclusion_imaging": [{"date": (screening_date - _D(days=rng.randint(1, 30))).isoformat(),
                               "complete_response": False, "liver_dominant_or_exclusive": True,
                               "recist_assessable": True, "resectable": False,
                               "extrahepatic_dominant_or_threatening": False}],
        "measurements": [
            _lab("haemoglobin", hb_value, hb_unit, lab_day),
            _lab("neutrophils", rng.uniform(1.6, 6.0) * per, count_unit, lab_day),
            _lab("platelets", rng.uniform(110, 350) * per, count_unit, lab_day),
            _lab("creatinine", cr_umol if cr_unit == "umol/L" else cr_umol / 88.42, cr_unit, lab_day),
            _lab("alt", rng.uniform(10, 60), "U/L", lab_day, high=40.0),
            _lab("ast", rng.uniform(10, 60), "U/L", lab_day, high=40.0),
            _lab("albumin", rng.uniform(31, 45), "g/L", lab_day, low=35.0, high=50.0),
            _lab("bilirubin", rng.uniform(5, 20), "umol/L", lab_day, high=17.0),
            _lab("inr", rng.uniform(0.9, 1.2), "1", lab_day, low=0.8, high=1.2),
            _lab("pt", rng.uniform(80, 100), "%", lab_day, low=70.0),
            _lab("weight", rng.uniform(50, 95), "kg", lab_day),
            _lab("lvef", float(rng.randint(50, 70)), "%", screening_date - _D(days=rng.randint(5, 90))),
            _lab("systolic_bp", float(rng.randint(110, 150)), "mm[Hg]", lab_day),
            _lab("diastolic_bp", float(rng.randint(65, 90)), "mm[Hg]", lab_day),
            {"analyte": "ecog", "value": float(rng.choice((0, 0, 1, 1, 2))), "date": lab_day.isoformat()},
        ],
        "liver": {"coagulation_disorder": False, "portal_thrombosis": False, "intrahepatic_biliary_dilatation": False,
                  "digestive_or_biliary_anastomosis_or_fistula": False, "cirrhosis": False},
        "cardiac": {"carcinoid_heart_disease": False, "antihypertensive_treatment": rng.random() < 0.3, "events": []},
        "administrative": {
            "informed_consent_signed": True,
            "informed_consent_date": (screening_date - _D(days=rng.randint(0, 10))).isoformat(),
            "social_security": True, "contraception_agreed": True, "legal_protection": False,
            "unable_to_consent": False, "other_interventional_trial": False, "mri_contraindicated": False,
            "lutathera_contraindicated": False,
            **({"pregnant": False, "breastfeeding": False} if sex == "female" else {}),
        },
    }
    if profile < 0.5:
        return record
    meas = record["measurements"]
    if profile < 0.8:
        kind = rng.randrange(8)
        if kind == 0:
            meas[2]["value"] = round(rng.uniform(30, 74) * per, 3)  # platelets too low
        elif kind == 1:
            meas[-1]["value"] = 3.0  # ECOG 3
        elif kind == 2:
            record["lutathera_cycles"] = cycles[:3]
        elif kind == 3:
            record["inclusion_imaging"][0]["complete_response"] = True
        elif kind == 4:
            record["cardiac"]["events"] = [{"type": "myocardial_infarction",
                                            "date": (screening_date - _D(days=rng.randint(30, 300))).isoformat()}]
        elif kind == 5:
            meas[4]["value"] = 150.0  # ALT > 2.5 x ULN
        elif kind == 6:
            record["liver"].update(cirrhosis=True, ascites="mild", encephalopathy="none")
            meas[7]["value"], meas[6]["value"] = 45.0, 27.0  # bilirubin 2 pts, albumin 3 pts -> Child-Pugh B9
            meas[6]["reference_low"] = 35.0
        else:
            record["lutathera_cycles"][2]["dose_reduced_for_toxicity"] = True
        return record
    kind = rng.randrange(5)
    if kind == 0:
        del meas[2]  # no platelets
    elif kind == 1:
        meas[0]["date"] = (screening_date - _D(days=60)).isoformat()  # stale haemoglobin
    elif kind == 2:
        meas[1]["unit"] = "cells"  # unusable unit
    elif kind == 3:
        record["administrative"].pop("social_security")
    else:
        meas[4].pop("reference_high")  # ALT without ULN
    return record


def make_records(n: int, seed: int = 0, *, screening_date: _dt.date = _dt.date(2024, 6, 3)) -> list[dict[str, Any]]:
    """``n`` own-format records (JSON-ready dicts), identical for identical ``seed``."""
    if n < 0:
        raise ValueError("n must be non-negative")
    rng = random.Random(seed)
    return [make_record(rng, i, screening_date) for i in range(n)]

"""Benchmark the clinical package: CTCAE lab grading, RECIST evaluation and dose decisions.

Run: PYTHONPATH=src python benchmarks/bench_clinical.py
Prints throughput for synthetic but realistic inputs (seeded; no data downloaded).
"""

from __future__ import annotations

import datetime as dt
import os
import random
import time

from lutarterial.clinical.ctcae import grade_lab
from lutarterial.clinical.dosing import decide_next_dose, parse_history
from lutarterial.clinical.recist import evaluate_recist_scopes, parse_recist_input

TESTS = [("hemoglobin", "g/dL", 12.0, 16.0, 6, 16), ("platelets", "G/L", 150, 400, 10, 400),
         ("neutrophils", "/mm3", 1800, 7500, 200, 8000), ("creatinine", "umol/L", 45, 104, 40, 700),
         ("alt", "U/L", None, 40, 5, 1000), ("bilirubin", "mg/dL", None, 1.2, 0.2, 15), ("albumin", "g/L", 35, 50, 15, 50),
         ("crcl", "mL/min", 90, None, 10, 130)]


def bench(label: str, fn, n: int) -> None:
    fn(1)
    t0 = time.perf_counter()
    fn(n)
    dt_s = time.perf_counter() - t0
    print(f"{label:<45} {n:>7} in {dt_s:7.3f} s  -> {n / dt_s:>10.0f} /s")


def grade_many(n: int) -> None:
    rng = random.Random(1)
    for _ in range(n):
        test, unit, lln, uln, lo, hi = TESTS[rng.randrange(len(TESTS))]
        grade_lab(test, rng.uniform(lo, hi), unit, lln=lln, uln=uln, baseline=(uln or lln) * 0.8)


def recist_doc(rng: random.Random) -> dict:
    d0 = dt.date(2025, 1, 6)
    base = [{"id": f"T{i}", "role": "target", "organ": ["liver", "liver", "lung", "node", "bone"][i],
             "nodal": i == 3, "diameter_mm": rng.uniform(15, 60)} for i in range(5)]
    base.append({"id": "NT1", "role": "non_target", "organ": "liver"})
    a = [{"date": d0.isoformat(), "baseline": True, "lesions": base}]
    f = 1.0
    for k in range(1, 9):
        f *= rng.uniform(0.8, 1.15)
        a.append({"date": (d0 + dt.timedelta(weeks=12 * k)).isoformat(), "baseline": False,
                  "lesions": [{"id": b["id"], "diameter_mm": b["diameter_mm"] * f} for b in base[:5]]
                  + [{"id": "NT1", "status": "present"}], "new_lesions": []})
    return {"patient": "B", "assessments": a}


def recist_many(n: int) -> None:
    rng = random.Random(2)
    docs = [recist_doc(rng) for _ in range(min(n, 200))]
    for i in range(n):
        p, a = parse_recist_input(docs[i % len(docs)])
        evaluate_recist_scopes(a, patient=p)


def dose_many(n: int) -> None:
    labs = []
    for d in (28, 54):
        for test, unit, lln, uln, _, _ in TESTS:
            labs.append({"id": f"{test}{d}", "test": test, "value": (lln or uln) * 1.1, "unit": unit, "lln": lln, "uln": uln,
                         "date": (dt.date(2025, 1, 6) + dt.timedelta(days=d)).isoformat()})
    doc = {"patient": "B", "decision_date": "2025-03-03", "baseline": {"creatinine": {"value": 80, "unit": "umol/L"}},
           "administrations": [{"date": "2025-01-06", "activity_gbq": 7.4, "route": "IV"}], "labs": labs}
    for _ in range(n):
        decide_next_dose(parse_history(doc))


if __name__ == "__main__":
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"clinical benchmark; cores={os.cpu_count()}, 1-min load average={load:.2f}")
    bench("CTCAE grade_lab (mixed tests, unit conversion)", grade_many, 20000)
    bench("RECIST 1.1 patients (9 assessments, 3 scopes)", recist_many, 2000)
    bench("next-dose decisions (16 labs)", dose_many, 1000)

"""Benchmark: 1,000 virtual patients through the PBPK model (issue 14 target: < 10 s on 2 cores).

Run from the repository root:  .venv/bin/python benchmarks/bench_pbpk.py [--n 1000] [--workers 2]

What is timed: one arm (68Ga, IAH into the proper hepatic artery, PET at 1 h; and 177Lu, 7.4 GBq
IAH right lobe, to 24 h) for N virtual patients sampled from the population, as stacked sparse
BDF systems of 200 patients (lutarterial.pbpk.solver.simulate_population). Reported: wall time,
CPU time of this process (and of the workers), the load average before and after, and two
floors measured in the same run: (1) the naive approach, one scipy BDF solve per patient at the
same tolerances (timed on 20 patients, scaled to N); (2) the machine floor, a fixed NumPy/LAPACK
workload (a 400x400 LU, 50 times) so numbers from a loaded shared machine can be compared.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before NumPy: no BLAS thread oversubscription
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import scipy.linalg  # noqa: E402

from lutarterial.pbpk import Administration, load_parameters  # noqa: E402
from lutarterial.pbpk.solver import simulate, simulate_population  # noqa: E402


def machine_floor() -> float:
    a = np.random.default_rng(0).standard_normal((400, 400))
    t = time.perf_counter()
    for _ in range(50):
        scipy.linalg.lu_factor(a)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    print(f"load average before: {os.getloadavg()}")
    print(f"machine floor (50 LU 400x400): {machine_floor():.3f} s")
    params = load_parameters().sample(args.n, np.random.default_rng(2024))
    cases = {"Ga-68 IAH whole, 1 h": (Administration("iah", "Ga-68", 150.0, 20.0, lobe="whole"), [1.0]),
             "Lu-177 IAH right, 24 h": (Administration("iah", "Lu-177", 7400.0, 200.0, lobe="right",
                                                       infusion_min=20.0), [4.0, 24.0])}
    for label, (adm, times) in cases.items():
        for workers in sorted({1, args.workers}):
            t0, c0 = time.perf_counter(), time.process_time()
            res = simulate_population(params, adm, times, workers=workers)
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            print(f"{label}: {args.n} patients, {workers} worker(s): wall {wall:.2f} s, CPU (this process) "
                  f"{cpu:.2f} s, mass balance {res.mass_balance_error:.1e}")
        sub = {k: v[:20] for k, v in params.items()}
        t0 = time.perf_counter()
        for i in range(20):
            simulate({k: v[i:i + 1] for k, v in sub.items()}, adm, times, rtol=1e-3, atol_rel=1e-5)
        naive = (time.perf_counter() - t0) / 20 * args.n
        print(f"{label}: floor, one BDF solve per patient: {naive:.1f} s for {args.n} (from 20)")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()

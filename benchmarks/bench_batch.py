"""Benchmark ``batch analyse``: N synthetic participants on a Dask LocalCluster, 1 vs 2 workers.

Run: .venv/bin/python benchmarks/bench_batch.py [--participants 20] [--workers 1 2] [--out /tmp/bench-batch]

Writes N small synthetic patients (24x40x40 voxels of 8 mm, 2 lesions, SPECT at 4/24/96/168 h),
a manifest and a fresh SQLite registry with a physicist, then times ``run_batch`` (uptake +
SPECT-measured dosimetry per participant, results stored by the client) once per worker count,
each on a fresh database (so every run stores everything). Wall time includes starting the
cluster; the per-participant compute time (worker-side) is reported too. Prints the machine load
(``os.getloadavg``) before and after: on a shared machine the figures move with it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import time
from pathlib import Path


def _setup(out: Path, n: int) -> Path:
    from lutarterial.imaging.synthetic import write_synthetic_patient

    lines = ["participant,iv,iv_voi,iah,iah_voi,names,spect,calibration"]
    for i in range(1, n + 1):
        d = out / f"p{i:03d}"
        if not (d / "truth.json").exists():
            write_synthetic_patient(d, seed=i, shape=(24, 40, 40), voxel_mm=(8.0, 8.0, 8.0), n_lesions=2,
                                    spect_times_h=(4.0, 24.0, 96.0, 168.0), ct_upsample=1)
        r = d.name
        lines.append(f"BDX-{i:03d},{r}/iv/pet,{r}/iv/seg.dcm,{r}/iah/pet,{r}/iah/seg.dcm,{r}/names.json,{r}/spect,")
    m = out / "manifest.csv"
    m.write_text("\n".join(lines) + "\n")
    return m


def _registry(path: Path, n: int):  # type: ignore[no-untyped-def]
    from lutarterial.registry import services
    from lutarterial.registry.db import Registry
    from lutarterial.web.demo import _actor, ensure_demo_users

    if path.exists():
        path.unlink()
    url = f"sqlite:///{path}"
    ensure_demo_users(url)
    reg = Registry.open(url)
    coord = _actor(reg, "coord.bdx")
    with reg.session() as s:
        for _ in range(n):
            services.register_participant(s, coord, site_code="BDX", reason="benchmark participant")
    return reg, _actor(reg, "phys.bdx")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--participants", type=int, default=20)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--out", type=Path, default=Path("/tmp/bench-batch"))
    args = ap.parse_args()
    from lutarterial.workflows.batch import read_manifest, run_batch

    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    rows = read_manifest(_setup(args.out, args.participants))
    print(f"{len(rows)} synthetic participants ready in {time.perf_counter() - t0:.1f} s")
    results = {}
    for w in args.workers:
        reg, phys = _registry(args.out / f"bench-{w}.db", len(rows))
        load0 = os.getloadavg()
        summary = run_batch(reg, phys, rows, reason="benchmark", workers=w, progress=False)
        load1 = os.getloadavg()
        reg.dispose()
        per = [d["seconds"] for d in summary.done]
        results[w] = summary.seconds
        print(f"workers={w}: {len(summary.done)} done, {len(summary.failed)} failed, wall {summary.seconds:.1f} s "
              f"(incl. cluster start), worker compute per participant median {statistics.median(per):.2f} s "
              f"(max {max(per):.2f}); load {load0[0]:.2f} -> {load1[0]:.2f}")
    if 1 in results and len(results) > 1:
        for w, s in results.items():
            if w != 1:
                print(f"speed-up {w} vs 1 worker: {results[1] / s:.2f}x")
    shutil.rmtree(args.out / "tmp", ignore_errors=True)


if __name__ == "__main__":
    main()

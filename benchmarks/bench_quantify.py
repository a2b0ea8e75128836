"""Benchmark: quantify one IV + IAH PET/CT pair (default 200x200x300 voxels, 20 VOIs, SUVpeak).

Target (issue 3): under 3 s on 2 cores for the quantification. Reports separately
  * compute: metrics of both studies (incl. SUVpeak) + the IAH/IV comparison, images in memory;
  * labels:  placing both DICOM SEGs on the PET grids (nearest neighbour);
  * read:    reading both PET DICOM series (300 files each).
Run:  PYTHONPATH=src python benchmarks/bench_quantify.py [--shape 300 200 200] [--repeat 3]
The synthetic patient is written once to a temporary directory (not timed).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shape", type=int, nargs=3, default=[300, 200, 200], help="slices rows columns")
    ap.add_argument("--voxel-mm", type=float, nargs=3, default=[2.0, 2.0, 2.0])
    ap.add_argument("--lesions", type=int, default=12, help="lesions (8 other VOIs: 20 VOIs at 12)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--keep", default=None, help="directory to write/reuse the synthetic patient")
    a = ap.parse_args()

    from lutarterial.imaging.compare import compare_studies
    from lutarterial.imaging.io import read_image, read_labels
    from lutarterial.imaging.metrics import quantify
    from lutarterial.imaging.synthetic import write_synthetic_patient

    out = a.keep or tempfile.mkdtemp(prefix="bench_quantify_")
    t0 = time.perf_counter()
    if not os.path.exists(os.path.join(out, "truth.json")):
        write_synthetic_patient(out, seed=5, shape=tuple(a.shape), voxel_mm=tuple(a.voxel_mm), n_lesions=a.lesions,
                                spect_times_h=(), ct_upsample=1)
    print(f"setup (write synthetic patient): {time.perf_counter() - t0:.1f} s  [{out}]")
    names = os.path.join(out, "names.json")
    best: dict[str, float] = {}
    for _ in range(a.repeat):
        t = time.perf_counter()
        iv = read_image(os.path.join(out, "iv", "pet"))
        iah = read_image(os.path.join(out, "iah", "pet"))
        t_read = time.perf_counter() - t
        t = time.perf_counter()
        iv_l = read_labels(os.path.join(out, "iv", "seg.dcm"), iv, names=names)
        iah_l = read_labels(os.path.join(out, "iah", "seg.dcm"), iah, names=names)
        t_lab = time.perf_counter() - t
        t = time.perf_counter()
        m1 = quantify(iv, iv_l)
        m2 = quantify(iah, iah_l)
        compare_studies(m1, m2, iv_timing=iv.timing, iah_timing=iah.timing)
        t_comp = time.perf_counter() - t
        for k, v in (("read", t_read), ("labels", t_lab), ("compute", t_comp)):
            best[k] = min(best.get(k, 1e9), v)
    n_voi = len(iv_l.vois)
    print(f"grid {tuple(iv.geometry.shape)} (slices, rows, cols), voxel {iv.geometry.spacing_mm} mm, "
          f"{n_voi} VOIs per study (+ derived healthy liver), SUVpeak on")
    print(f"cores available: {os.cpu_count()}, load average: {os.getloadavg()}")
    for k in ("compute", "labels", "read"):
        print(f"best of {a.repeat}: {k:8s} {best[k]:.2f} s")
    print(f"best of {a.repeat}: total    {sum(best.values()):.2f} s")


if __name__ == "__main__":
    main()

"""Benchmark the screening command as a user runs it: whole process, files to files (issue 10).

Times ``lutarterial screen COHORT.ndjson --out DIR --jobs 2`` (and optionally ``--json`` to a
file) as a subprocess, wall clock from start to exit, plus two floors measured in the same run
on the same machine so that a loaded, shared machine can be judged:

* ``startup``: ``lutarterial --version`` (interpreter + CLI import);
* ``read+parse``: a Python process that reads the same NDJSON file and ``json.loads`` every line
  (the least any screening of that file must do, in one process).

Prints a Markdown table and writes JSON (``--json-out``) with the machine (CPU model, cores,
memory), the load average before and after, and the date. The synthetic cohort is generated
first (not timed) with ``lutarterial.records.synthetic.make_records``.

    .venv/bin/python benchmarks/bench_screen_cli.py --n 100000 --jobs 2 --repeat 2
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _machine() -> dict[str, object]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem_gib = round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    return {"cpu": model or platform.processor(), "cores": os.cpu_count(), "memory_gib": mem_gib,
            "python": platform.python_version(), "os": platform.platform()}


def _timed(argv: list[str], cwd: Path) -> tuple[float, float, int]:
    """(wall s, CPU s of the process tree, exit code)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    r = subprocess.run(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if r.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(argv)} failed ({r.returncode}): {r.stderr[-500:]}")
    return wall, cpu, r.returncode


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--with-json", action="store_true", help="also time --json (NDJSON to a file)")
    ap.add_argument("--json-out", type=Path, default=None)
    args = ap.parse_args()

    exe = shutil.which("lutarterial", path=str(Path(sys.executable).parent)) or "lutarterial"
    work = Path(tempfile.mkdtemp(prefix="bench-screen-cli-"))
    cohort = work / "cohort.ndjson"
    from lutarterial.records.synthetic import make_records

    t0 = time.perf_counter()
    with cohort.open("w", encoding="utf-8") as fh:
        for rec in make_records(args.n, seed=2026):
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
    gen_s = time.perf_counter() - t0
    runs: dict[str, list[tuple[float, float]]] = {"startup": [], "read+parse": [], "screen --out": []}
    if args.with_json:
        runs["screen --json --out"] = []
    load_before = os.getloadavg()
    parse_code = ("import json,sys\nn=0\nfor line in open(sys.argv[1], encoding='utf-8'):\n"
                  "    json.loads(line); n+=1\nprint(n)")
    for _ in range(args.repeat):
        runs["startup"].append(_timed([exe, "--version"], work)[:2])
        runs["read+parse"].append(_timed([sys.executable, "-c", parse_code, str(cohort)], work)[:2])
        out = work / "out"
        runs["screen --out"].append(_timed([exe, "screen", str(cohort), "--out", str(out), "--jobs", str(args.jobs)],
                                           work)[:2])
        if args.with_json:
            runs["screen --json --out"].append(_timed(
                ["bash", "-c", f"'{exe}' screen '{cohort}' --json --out '{work / 'out2'}' --jobs {args.jobs} "
                               f"> '{work / 'out.ndjson'}'"], work)[:2])
    load_after = os.getloadavg()
    rows = []
    for name, vals in runs.items():
        walls = sorted(v[0] for v in vals)
        rows.append({"run": name, "wall_s_best": round(walls[0], 2), "wall_s_all": [round(w, 2) for w in walls],
                     "cpu_s_best": round(min(v[1] for v in vals), 2), "cpu_s_all": [round(v[1], 2) for v in vals]})
    result = {
        "date_utc": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M"),
        "machine": _machine(), "n_records": args.n, "jobs": args.jobs, "repeat": args.repeat,
        "load_average_before": [round(x, 2) for x in load_before], "load_average_after": [round(x, 2) for x in load_after],
        "generate_s": round(gen_s, 1), "cohort_mb": round(cohort.stat().st_size / 1e6, 1), "runs": rows,
        "command": f"lutarterial screen cohort.ndjson --out DIR --jobs {args.jobs}",
    }
    m = result["machine"]
    print(f"{args.n:,} records, {result['cohort_mb']} MB NDJSON; {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB; "
          f"load {result['load_average_before']} -> {result['load_average_after']}; {result['date_utc']} UTC")
    print("| run (whole process, files to files) | best wall s | all wall s | best CPU s (process tree) | all CPU s (run order) |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['run']} | {r['wall_s_best']} | {', '.join(map(str, r['wall_s_all']))} | {r['cpu_s_best']} | "
              f"{', '.join(map(str, r['cpu_s_all']))} |")
    if args.json_out:
        args.json_out.write_text(json.dumps(result, indent=2) + "\n")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

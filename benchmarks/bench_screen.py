"""Benchmark: screen N synthetic own-format records (default 100,000) and print records/s.

What is timed: parsing each record from its JSON text (pydantic, strict), building the
domain view, evaluating all 23 criteria and serialising the issue's JSON line: the work
``lutarterial screen cohort.ndjson --json --jobs J`` does, minus terminal and file output.
Generating the synthetic records is not timed.

    PYTHONPATH=src python benchmarks/bench_screen.py --n 100000 --jobs 2

It first screens ``--single`` records in this process alone and reports the CPU time per
record (``time.process_time``: not inflated by other jobs waiting for the same cores), then the
``--n`` records over ``--jobs`` processes with the wall time, the CPU time summed over all
processes and the load average (the machine is shared: state both wall and CPU figures).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time

from lutarterial.eligibility.cohort import CohortSummary, screen_texts_parallel
from lutarterial.records.synthetic import make_records


def _cpu_s() -> float:
    """User + system CPU seconds of this process and its finished worker processes."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        r = resource.getrusage(who)
        total += r.ru_utime + r.ru_stime
    return total


def _reference_loop_cpu_s() -> float:
    """CPU seconds of a fixed pure-Python loop: a yardstick of how fast this core ran during the run."""
    t0 = time.process_time()
    s = 0
    for i in range(10_000_000):
        s += i
    return time.process_time() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-json", action="store_true", help="skip serialising the JSON lines")
    ap.add_argument("--single", type=int, default=5000, help="records screened single-process first (0: skip)")
    args = ap.parse_args()

    t0 = time.perf_counter()
    texts = [(f"synthetic:{i + 1}", json.dumps(r)) for i, r in enumerate(make_records(args.n, seed=args.seed))]
    t_gen = time.perf_counter() - t0

    if args.single:
        from lutarterial.eligibility.cohort import screen_texts

        sample = texts[: args.single]
        screen_texts(sample[:50], as_of=None, protocol_version=None, want_json=not args.no_json)  # warm caches/imports
        load_single = os.getloadavg()[0]
        c0, w0 = time.process_time(), time.perf_counter()
        screen_texts(sample, as_of=None, protocol_version=None, want_json=not args.no_json)
        c1, w1 = time.process_time() - c0, time.perf_counter() - w0
        print(f"single process, {len(sample)} records: {c1 / len(sample) * 1e6:.0f} us CPU per record = "
              f"{len(sample) / c1:,.0f} records per CPU-second (wall {w1:.2f} s, load average {load_single:.2f})")

    load_before = os.getloadavg()
    summary = CohortSummary()
    cpu0 = _cpu_s()
    t0 = time.perf_counter()
    for chunk in screen_texts_parallel(texts, as_of=None, protocol_version=None, want_json=not args.no_json,
                                       jobs=args.jobs, chunk_size=2000):
        for _line, row in chunk:
            summary.add_row(row)
    elapsed = time.perf_counter() - t0
    cpu = _cpu_s() - cpu0
    load_after = os.getloadavg()

    ref = _reference_loop_cpu_s()
    s = summary.to_dict()
    print(f"records: {args.n}  jobs: {args.jobs}  cpus: {os.cpu_count()}  (generation {t_gen:.1f} s, not timed)")
    print(f"screened in {elapsed:.2f} s: {args.n / elapsed:,.0f} records/s")
    print(f"verdicts: eligible {s['eligible']}, ineligible {s['ineligible']}, incomplete {s['incomplete']}, "
          f"unreadable {s['unreadable']}")
    print(f"CPU time (all processes): {cpu:.1f} s = {args.n / cpu:,.0f} records per CPU-second; "
          f"on {args.jobs} uncontended cores about {args.n / cpu * args.jobs:,.0f} records/s "
          f"({args.n / (args.n / cpu * args.jobs):.1f} s for {args.n})")
    print(f"reference loop (10M integer additions, CPython): {ref:.2f} CPU-s on this machine during the run "
          "(compare across machines to scale the figures above)")
    print(f"load average before/after: {load_before[0]:.2f} / {load_after[0]:.2f} (machine shared with other jobs)")


if __name__ == "__main__":
    main()

"""Benchmark: screen N synthetic own-format records (default 100,000) and report three figures.

(a) **screening throughput, one process**: parse each record from its JSON text (pydantic,
    strict), build the domain view and evaluate all 23 criteria; no output is built.
(b) **end to end, one process**: (a) plus the issue's JSON line and the screening-log row,
    i.e. the per-record work of ``lutarterial screen cohort.ndjson --json``.
(c)/(d) **the cohort over --jobs processes** (default 100,000 records, 2 jobs), consumed as the CLI
    does (NDJSON written to os.devnull, log rows counted): wall time, CPU seconds summed over
    all processes, and the load average before/after (the machine may be shared).

(a) and (b) are CPU time per record (``time.process_time``, best of ``--repeat`` runs): other
jobs waiting for the same cores do not inflate it. Generating the synthetic records is not timed.

    PYTHONPATH=src python benchmarks/bench_screen.py --n 100000 --jobs 2
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time

from lutarterial.eligibility.cohort import CohortSummary, screen_texts_chunks
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


def _per_record_cpu_us(fn, items, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        c0 = time.process_time()
        fn(items)
        best = min(best, time.process_time() - c0)
    return best / len(items) * 1e6


def _cohort_run(label: str, what: str, texts, n: int, jobs: int, want_json: bool) -> None:
    """Screen the whole cohort over ``jobs`` processes as the CLI does, and print the figures."""
    load_before = os.getloadavg()
    summary = CohortSummary()
    cpu0 = _cpu_s()
    t0 = time.perf_counter()
    with open(os.devnull, "w", encoding="utf-8") as sink:
        for sc in screen_texts_chunks(texts, as_of=None, protocol_version=None, want_json=want_json, jobs=jobs,
                                      chunk_size=2000):
            if want_json:
                sink.write(sc.ndjson)
            for row in sc.row_dicts():
                summary.add_row(row)
    elapsed = time.perf_counter() - t0
    cpu = _cpu_s() - cpu0
    load_after = os.getloadavg()
    s = summary.to_dict()
    print(f"{label} {n:,} records, {jobs} processes, {what}: {elapsed:.1f} s wall = "
          f"{n / elapsed:,.0f} records/s; CPU {cpu:.1f} s summed over all processes "
          f"({cpu / n * 1e6:.0f} us per record); load average before/after {load_before[0]:.2f} / "
          f"{load_after[0]:.2f} (1 min)")
    print(f"    verdicts: eligible {s['eligible']}, ineligible {s['ineligible']}, incomplete {s['incomplete']}, "
          f"unreadable {s['unreadable']}; if the {jobs} cores were ours alone: about {cpu / jobs:.1f} s wall")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100_000, help="records for (c)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--single", type=int, default=5000, help="records for (a) and (b) (0: skip)")
    ap.add_argument("--repeat", type=int, default=3, help="runs of (a) and (b); the best is reported")
    args = ap.parse_args()

    from lutarterial.eligibility.cohort import screen_texts
    from lutarterial.eligibility.engine import screen_patient
    from lutarterial.protocol.loader import version_in_force
    from lutarterial.records.io import parse_json_text_many

    t0 = time.perf_counter()
    all_texts = [(f"synthetic:{i + 1}", json.dumps(r))
                 for i, r in enumerate(make_records(max(args.n, args.single), seed=args.seed))]
    texts = all_texts[: args.n]
    t_gen = time.perf_counter() - t0
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start; "
          f"synthetic records generated in {t_gen:.1f} s (not timed)")

    if args.single:
        sample = all_texts[: args.single]

        def screen_only(items):
            for origin, text in items:
                for rec in parse_json_text_many(text, origin):
                    p = rec.to_patient()
                    screen_patient(p, as_of=p.screening_date, protocol=version_in_force(p.screening_date))

        def end_to_end(items):
            screen_texts(items, as_of=None, protocol_version=None, want_json=True)

        screen_only(sample[:50])
        end_to_end(sample[:50])  # warm caches and imports
        load = os.getloadavg()[0]
        a_us = _per_record_cpu_us(screen_only, sample, args.repeat)
        b_us = _per_record_cpu_us(end_to_end, sample, args.repeat)
        print(f"(a) one process, parse + screen (no output), {len(sample)} records: {a_us:.0f} us CPU per record "
              f"= {1e6 / a_us:,.0f} records per CPU-second")
        print(f"(b) one process, end to end with JSON line + log row: {b_us:.0f} us CPU per record "
              f"= {1e6 / b_us:,.0f} records per CPU-second (load average {load:.2f})")

    for label, want_json, what in (
        ("(c)", True, "end to end with JSON lines (`screen FILE --json --out DIR`)"),
        ("(d)", False, "screening log + CONSORT summary only (`screen FILE --out DIR`)"),
    ):
        _cohort_run(label, what, texts, args.n, args.jobs, want_json)
    ref = _reference_loop_cpu_s()
    print(f"reference loop (10M integer additions, CPython): {ref:.2f} CPU-s on this machine after the run "
          "(compare across machines to scale the figures above)")


if __name__ == "__main__":
    main()

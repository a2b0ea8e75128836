"""Registry benchmark: audited write latency, audit-chain verification and export speed.

Usage::

    PYTHONPATH=src python benchmarks/bench_registry.py [--db URL] [--n 200]

Default database: a temporary SQLite file. Each "write" is one unit of work as the web app does
it: register a participant (with its audit rows), or record a visit. Prints the figures.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", default=None, help="database URL (default: temporary SQLite file)")
    parser.add_argument("--n", type=int, default=200, help="participants to create")
    args = parser.parse_args()

    from lutarterial.registry import Registry, services, upgrade, verify_audit_chain
    from lutarterial.registry.access import Actor
    from lutarterial.registry.exports import export_csv, odm_document
    from lutarterial.registry.models import Role

    tmp = Path(tempfile.mkdtemp(prefix="lutarterial-bench-"))
    url = args.db or f"sqlite:///{tmp / 'bench.db'}"
    upgrade(url)
    reg = Registry.open(url)
    admin = Actor(None, "bench", frozenset({Role.ADMIN}))
    writes: list[float] = []
    ids: list[int] = []
    for i in range(args.n):
        t0 = time.perf_counter()
        with reg.session() as s:
            p = services.register_participant(s, admin, site_code=("BDX", "PES", "NIM", "TLS")[i % 4], reason="bench")
            ids.append(p.id)
        writes.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        with reg.session() as s:
            services.record_visit(s, admin, ids[-1], kind="follow_up", planned_date="2025-01-01", reason="bench")
        writes.append(time.perf_counter() - t0)
    with reg.session(readonly=True) as s:
        t0 = time.perf_counter()
        report = verify_audit_chain(s)
        verify_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        xml = odm_document(s, admin)
        odm_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        export_csv(s, admin, tmp / "export.zip")
        csv_s = time.perf_counter() - t0
    reg.dispose()
    q = statistics.quantiles(writes, n=20)
    print(f"database: {reg.engine.dialect.name}; {len(writes)} audited write transactions")
    print(f"write latency: median {statistics.median(writes) * 1e3:.1f} ms, p95 {q[18] * 1e3:.1f} ms")
    print(f"audit verify: {report.rows_checked} rows in {verify_s * 1e3:.0f} ms "
          f"({report.rows_checked / verify_s:,.0f} rows/s), intact={report.ok}")
    print(f"ODM export: {len(ids)} participants, {len(xml) / 1e6:.2f} MB in {odm_s * 1e3:.0f} ms")
    print(f"CSV export (zip): {csv_s * 1e3:.0f} ms")


if __name__ == "__main__":
    main()

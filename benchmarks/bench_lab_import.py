"""Time ``import_labs`` on a synthetic French lab CSV (issue 15): N rows for one participant on a
fresh SQLite registry, imported once (all new), then again (all duplicates).

    .venv/bin/python benchmarks/bench_lab_import.py [N]
"""

from __future__ import annotations

import datetime as dt
import random
import sys
import tempfile
import time
from pathlib import Path


def main(n: int = 2000) -> None:
    from lutarterial.registry import Registry, services
    from lutarterial.registry.access import SYSTEM_ACTOR
    from lutarterial.registry.db import upgrade
    from lutarterial.registry.imports import import_labs

    rnd = random.Random(15)
    analytes = [("Plaquettes", "G/L", 150, 400, 40, 450), ("Hémoglobine", "g/dL", 12, 16, 7, 16),
                ("ALAT", "UI/L", 7, 40, 10, 300), ("Créatinine", "µmol/L", 45, 90, 40, 200)]
    lines = ["trial_number,analyte,value,unit,lln,uln,date"]
    day0 = dt.date(2024, 1, 1)
    for i in range(n):
        name, unit, lln, uln, lo, hi = analytes[i % 4]
        lines.append(f"BDX-001,{name},{rnd.uniform(lo, hi):.1f},{unit},{lln},{uln},{day0 + dt.timedelta(days=i // 4)}")
    data = ("\n".join(lines) + "\n").encode()
    with tempfile.TemporaryDirectory() as d:
        url = f"sqlite:///{Path(d) / 'bench.db'}"
        upgrade(url)
        reg = Registry.open(url)
        with reg.session() as s:
            services.register_participant(s, SYSTEM_ACTOR, site_code="BDX", reason="bench")
        for label in ("new", "duplicates"):
            t0 = time.perf_counter()
            with reg.session() as s:
                out = import_labs(s, SYSTEM_ACTOR, data, reason="bench")
            dt_s = time.perf_counter() - t0
            print(f"{label}: {n} rows in {dt_s:.2f} s ({1000 * dt_s / n:.2f} ms/row): imported {out.imported}, "
                  f"duplicates {out.duplicates}, refused {len(out.refused)}")
        reg.dispose()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)

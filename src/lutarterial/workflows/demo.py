"""The demo's imaging part (issue 11): each treated participant goes through the real pipeline.

``demo_imaging(reg, actor, tn, seed=..., iv_pet_date=..., iah_date=..., data_dir=...)`` writes a
small synthetic patient dated like the participant's visits (68Ga PET after the IV cycle on the
``pet_after_iv`` day; 68Ga PET after the IAH injection on the IAH-cycle day, 177Lu given 2 h later;
SPECT 4, 24, 96 and 168 h after it; PatientID = the trial number), imports it with
:func:`lutarterial.workflows.studies.import_study` (routes from the same-day visits), and analyses
it with :func:`lutarterial.workflows.plan.plan_analyses` / ``run_plan`` / ``store_outcomes`` — the
same functions as ``lutarterial study import|analyse``. The synthetic camera's calibration is a
site calibration file in the data directory (``calibrations/demo-spect.csv``), valid from 2000.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Any

__all__ = ["demo_imaging", "DEMO_SHAPE", "DEMO_VOXEL_MM", "SPECT_TIMES_H", "DEMO_NOISE", "demo_calibration"]

#: Small phantom (slices, rows, columns) of 8 mm voxels: the demo stays fast.
DEMO_SHAPE = (32, 48, 48)
DEMO_VOXEL_MM = (8.0, 8.0, 8.0)
SPECT_TIMES_H = (4.0, 24.0, 96.0, 168.0)
#: Relative SD of multiplicative voxel noise (so measured values differ from the truth).
DEMO_NOISE = 0.05


def demo_calibration(data_dir: Path) -> Path:
    """The demo site's SPECT calibration registry (the synthetic camera; synthetic value)."""
    from lutarterial.imaging.synthetic import SYNTH_CALIBRATION as c

    path = Path(data_dir) / "calibrations" / "demo-spect.csv"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("# demo site calibration registry: SYNTHETIC camera of lutarterial.imaging.synthetic\n"
                        "site,camera,collimator,nuclide,valid_from,valid_to,cps_per_mbq,time_basis,source\n"
                        f"{c['site']},{c['camera']},{c['collimator']},{c['nuclide']},2000-01-01,,{c['cps_per_mbq']},"
                        f"{c['time_basis']},synthetic demo camera\n")
    return path


def demo_imaging(reg: Any, actor: Any, tn: str, *, seed: int, iv_pet_date: dt.date, iah_date: dt.date,
                 data_dir: Path, store: Path | None = None) -> list[dict[str, Any]]:
    """Generate, import and analyse one treated demo participant; returns the stored analyses."""
    from lutarterial.imaging.synthetic import write_synthetic_patient
    from lutarterial.workflows.analyse import store_outcomes
    from lutarterial.workflows.plan import plan_analyses, run_plan
    from lutarterial.workflows.studies import import_study

    store = store or Path(data_dir) / "store"
    out = Path(data_dir) / "demo-imaging" / tn
    if out.exists():
        shutil.rmtree(out)
    iv_inj = dt.datetime.combine(iv_pet_date, dt.time(9, 0))
    iah_inj = dt.datetime.combine(iah_date, dt.time(9, 0))
    write_synthetic_patient(out, seed=seed, shape=DEMO_SHAPE, voxel_mm=DEMO_VOXEL_MM, n_lesions=2, noise=DEMO_NOISE,
                            spect_times_h=SPECT_TIMES_H, ct_upsample=1, iv_injection_time=iv_inj,
                            iah_delay_h=(iah_inj - iv_inj).total_seconds() / 3600.0, patient_id=tn)
    with reg.session() as s:
        import_study(s, actor, tn, [out / "iv", out / "iah", out / "spect"], store=store,
                     reason="demo: 68Ga PET/CT (IV, IAH) and 177Lu SPECT/CT time points received")
    with reg.session(readonly=True) as s:
        plan = plan_analyses(s, actor, tn, calibration=str(demo_calibration(data_dir)))
        outcomes = run_plan(s, plan, store, png=True)
    with reg.session() as s:
        stored = store_outcomes(s, actor, tn, outcomes, figures_dir=Path(data_dir) / "figures",
                                reason="demo: IAH-vs-IV uptake and SPECT-measured IAH-cycle dosimetry (pipeline)")
    return [x.to_dict() for x in stored]

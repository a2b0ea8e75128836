"""lutarterial.dosimetry: 177Lu (and 90Y, 131I, 68Ga) kinetics, organ and voxel absorbed dose, DVH, BED.

Pure library (numpy/scipy on arrays); readers and writers live in :mod:`lutarterial.dosimetry.io`
and the CLI in :mod:`lutarterial.cli.dosimetry`. See docs/dosimetry.md.
"""

from lutarterial.dosimetry.dose import SelfDose, organ_self_dose, sphere_s_value
from lutarterial.dosimetry.kernels import DoseKernel, dose_voxel_kernel
from lutarterial.dosimetry.kinetics import (
    FitResult,
    fit_tac,
    tia_hanscheid2018,
    tia_madsen2018,
    tia_trapezoid_physical_tail,
)
from lutarterial.dosimetry.metrics import (
    CycleDose,
    bed_monoexponential,
    cumulative_check,
    d_x,
    dose_stats,
    dvh,
    eud_radiobiological,
    geud_niemierko,
)
from lutarterial.dosimetry.nuclides import Nuclide, get_nuclide
from lutarterial.dosimetry.published_kernels import (
    lanconelli2012_kernel,
    lanconelli2012_sizes,
    match_lanconelli2012,
)
from lutarterial.dosimetry.voxel import (
    density_correct,
    density_from_hu,
    dose_from_tia_kernel,
    dose_local_deposition,
    tia_map_from_timepoints,
)

__all__ = [
    "CycleDose", "DoseKernel", "FitResult", "Nuclide", "SelfDose",
    "bed_monoexponential", "cumulative_check", "d_x", "density_correct", "density_from_hu",
    "dose_from_tia_kernel", "dose_local_deposition", "dose_stats", "dose_voxel_kernel", "dvh",
    "eud_radiobiological", "fit_tac", "geud_niemierko", "get_nuclide", "lanconelli2012_kernel",
    "lanconelli2012_sizes", "match_lanconelli2012", "organ_self_dose",
    "sphere_s_value", "tia_hanscheid2018", "tia_madsen2018", "tia_map_from_timepoints",
    "tia_trapezoid_physical_tail",
]

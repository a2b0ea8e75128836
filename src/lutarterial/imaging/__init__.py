"""Quantitative PET/CT and SPECT/CT for LUTARTERIAL (issue 3).

Modules: :mod:`.types` (Image, LabelMap, VOI kinds), :mod:`.io` (read_image, read_labels),
:mod:`.suv` (QIBA SUV, SUL, SUVbsa), :mod:`.spect` (calibration registry, recovery
coefficients), :mod:`.metrics` (per-VOI metrics, SUVpeak), :mod:`.compare` (IAH vs IV, lobar
mode), :mod:`.synthetic` (synthetic patients with known truth), :mod:`.figure` (PNG report).
"""

__all__: list[str] = []

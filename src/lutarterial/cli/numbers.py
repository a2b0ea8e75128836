"""Every number typed on the command line is finite, not negative, and physically plausible.

Why one guard for all commands: click reads ``inf`` and ``nan`` as valid floats, so before this
``--injected-mbq inf`` gave SUV 0.0 everywhere and ``--time-h -5`` a dose (issue 9, item 5).
:func:`guard_numbers` wraps each registered command once: before the command body runs, each
``float``/``int`` argument is checked (NaN and ±inf refused; negative refused unless the
option is listed in :data:`SIGNED`), and the options of :data:`QUANTITIES` against their
physical limits (:mod:`lutarterial.plausibility`). The message names the option.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable
from typing import Any

import typer

from lutarterial.errors import ImplausibleValueError
from lutarterial.plausibility import check_quantity

__all__ = ["QUANTITIES", "SIGNED", "check_cli_number", "guard_numbers"]

#: Parameter name -> (plausibility kind, unit the option is given in).
QUANTITIES: dict[str, tuple[str, str]] = {
    "weight_kg": ("weight", "kg"),
    "iv_weight_kg": ("weight", "kg"),
    "iah_weight_kg": ("weight", "kg"),
    "height_m": ("height", "m"),
    "injected_mbq": ("injected_activity", "MBq"),
    "iv_injected_mbq": ("injected_activity", "MBq"),
    "iah_injected_mbq": ("injected_activity", "MBq"),
    "half_life_s": ("half_life", "s"),
    "teff_h": ("half_life", "h"),
    "time_h": ("time_post_injection", "h"),
    "voxel_mm": ("voxel_size", "mm"),
    "kidney_limit_gy": ("absorbed_dose", "Gy"),
    "kidney_bed_limit_gy": ("absorbed_dose", "Gy"),
    "marrow_limit_gy": ("absorbed_dose", "Gy"),
    "sd_min_weeks": ("duration", "wk"),
}

#: Numeric parameters that may legitimately be negative (none today).
SIGNED: frozenset[str] = frozenset()


def _option_name(param: inspect.Parameter) -> str:
    decls = getattr(param.default, "param_decls", None) or ()
    for d in decls:
        if isinstance(d, str) and d.startswith("--"):
            return d
    return "--" + param.name.replace("_", "-") if decls else param.name.upper()


def check_cli_number(param_name: str, option: str, value: Any) -> None:
    """Raise :class:`ImplausibleValueError` naming ``option`` when ``value`` is no usable number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    if isinstance(value, float) and not math.isfinite(value):
        raise ImplausibleValueError(f"{option} {value!r}: not a finite number; give a finite value")
    if value < 0 and param_name not in SIGNED:
        raise ImplausibleValueError(f"{option} {value!r}: must not be negative")
    q = QUANTITIES.get(param_name)
    if q is not None:
        check_quantity(q[0], value, q[1], name=option)


def _guard(callback: Callable[..., Any]) -> Callable[..., Any]:
    if getattr(callback, "_numbers_guarded", False):
        return callback
    sig = inspect.signature(callback)
    names = {n: _option_name(p) for n, p in sig.parameters.items()}

    @functools.wraps(callback)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        bound = sig.bind_partial(*args, **kwargs)
        for name, value in bound.arguments.items():
            values = value if isinstance(value, (list, tuple)) else (value,)
            for v in values:
                check_cli_number(name, names.get(name, name), v)
        return callback(*args, **kwargs)

    wrapper._numbers_guarded = True  # type: ignore[attr-defined]
    return wrapper


def guard_numbers(app: typer.Typer) -> None:
    """Wrap every command of ``app`` (and of its sub-apps) with the number checks (idempotent)."""
    for info in app.registered_commands:
        if info.callback is not None:
            info.callback = _guard(info.callback)
    for group in app.registered_groups:
        if group.typer_instance is not None:
            guard_numbers(group.typer_instance)

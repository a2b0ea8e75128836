"""Solve the PBPK model for one or many virtual patients; check mass balance; derive outputs.

``simulate(params, Administration(...), times_h)`` stacks all patients into one sparse
block-diagonal system and integrates it with scipy's BDF (one fill-reducing ordering reused for
every factorisation) and the analytic sparse Jacobian
(:class:`lutarterial.pbpk.model.Model`). A solver failure, or a mass-balance error above
``MASS_BALANCE_TOL`` (relative to the administered amount, at any output time, for both the
label and the peptide) raises :class:`~lutarterial.errors.InvalidInputError`: no curve that breaks
mass balance is ever returned.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.integrate import BDF, solve_ivp
from scipy.sparse.linalg import splu

from lutarterial.errors import InvalidInputError
from lutarterial.pbpk.model import (
    ART,
    CUM0,
    H0,
    N_STATE,
    ORGANS,
    P0,
    POOLS,
    SINK,
    N_BLOCK,
    SYRINGE,
    TUBULE,
    URINE,
    VEN,
    Model,
    build_physiology,
    pool_index,
)
from lutarterial.pbpk.parameters import half_life_h, peptide_molar_mass

__all__ = ["MASS_BALANCE_TOL", "Administration", "SimulationResult", "simulate", "STANDARD_TIMES_H"]

MASS_BALANCE_TOL = 1e-6
#: Plausibility limits of one administration (refused above: a unit typed wrong, e.g. kBq as MBq).
MAX_ACTIVITY_MBQ = 100000.0
MAX_PEPTIDE_UG = 100000.0
STANDARD_TIMES_H = (0.5, 1.0, 4.0, 24.0, 48.0, 96.0, 168.0)
ROUTES = ("iv", "iah")
LOBES = ("right", "left", "whole")


@dataclass(frozen=True)
class Administration:
    """What is given, where and how fast.

    ``route`` iv (antecubital vein) or iah (hepatic artery); ``lobe`` for iah: right or left
    (lobar catheter) or whole (proper hepatic artery: split by the lobes' arterial flow);
    ``catheter_spill`` the fraction of a lobar injection reaching the other lobe (catheter
    position, reflux); ``infusion_min`` 0 for a bolus, else a constant-rate infusion.
    """

    route: str
    nuclide: str
    activity_mbq: float
    peptide_ug: float
    lobe: str = "whole"
    infusion_min: float = 1.0
    catheter_spill: float = 0.0
    peptide: str = "DOTATATE"

    def __post_init__(self) -> None:
        if self.route not in ROUTES:
            raise InvalidInputError(f"route {self.route!r}; valid: {', '.join(ROUTES)}")
        if self.lobe not in LOBES:
            raise InvalidInputError(f"lobe {self.lobe!r}; valid: {', '.join(LOBES)}")
        for name, v in (("activity (MBq)", self.activity_mbq), ("peptide amount (ug)", self.peptide_ug),
                        ("infusion duration (min)", self.infusion_min)):
            if not isinstance(v, (int, float)) or not math.isfinite(v):
                raise InvalidInputError(f"{name} must be a finite number, got {v!r}")
        if not 0 < self.activity_mbq <= MAX_ACTIVITY_MBQ:
            raise InvalidInputError(f"activity must be > 0 and <= {MAX_ACTIVITY_MBQ:g} MBq, got {self.activity_mbq}")
        if not 0 < self.peptide_ug <= MAX_PEPTIDE_UG:
            raise InvalidInputError(f"peptide amount must be > 0 and <= {MAX_PEPTIDE_UG:g} ug, got {self.peptide_ug}")
        if self.infusion_min < 0 or self.infusion_min > 24 * 60:
            raise InvalidInputError(f"infusion duration {self.infusion_min} min must be within 0-1440")
        if not 0.0 <= self.catheter_spill <= 1.0:
            raise InvalidInputError(f"catheter spill fraction {self.catheter_spill} is outside 0-1")
        half_life_h(self.nuclide)  # refuses a nuclide without decay data
        peptide_molar_mass(self.peptide)

    @property
    def peptide_nmol(self) -> float:
        return self.peptide_ug * 1000.0 / peptide_molar_mass(self.peptide)


@dataclass(frozen=True)
class SimulationResult:
    """Solution for N patients at the output times.

    ``y`` has shape (N, T, N_STATE) (layout: :mod:`lutarterial.pbpk.model`); activities in MBq
    (physically decayed: the activity present), peptide in nmol.
    """

    times_h: np.ndarray
    y: np.ndarray
    administration: Administration
    nuclide: str
    half_life_h: float
    params: Mapping[str, np.ndarray]
    mass_balance_error: float
    peptide_balance_error: float
    volumes_l: Mapping[str, np.ndarray] = field(repr=False)
    n_steps: int = 0

    @property
    def n(self) -> int:
        return int(self.y.shape[0])

    def decay_factor(self) -> np.ndarray:
        return np.exp(-math.log(2.0) / self.half_life_h * self.times_h)

    def pool_activity(self, organ: str, pool: str) -> np.ndarray:
        """MBq in one pool, shape (N, T)."""
        return self.y[:, :, H0 + pool_index(organ, pool)]

    def organ_activity(self, organ: str) -> np.ndarray:
        """MBq in an organ (all four pools), shape (N, T); ``blood`` = arterial + venous plasma."""
        if organ == "blood":
            return self.y[:, :, H0 + ART] + self.y[:, :, H0 + VEN]
        total = sum(self.pool_activity(organ, p) for p in POOLS)
        if organ == "kidneys":  # filtrate in transit through tubules and collecting system
            total = total + self.y[:, :, H0 + TUBULE]
        return total  # type: ignore[return-value]

    def urine_activity(self) -> np.ndarray:
        return self.y[:, :, H0 + URINE]

    def percent_ia(self, organ: str) -> np.ndarray:
        """Decay-corrected % of injected activity (the imaging convention), shape (N, T)."""
        a = self.urine_activity() if organ == "urine" else self.organ_activity(organ)
        return 100.0 * a / (self.administration.activity_mbq * self.decay_factor())

    def concentration_kbq_ml(self, organ: str) -> np.ndarray:
        return self.organ_activity(organ) * 1000.0 / (self.volumes_l[organ] * 1000.0)[:, None]

    def suv(self, organ: str) -> np.ndarray:
        """Mean SUV (body weight) of an organ: concentration / (decayed activity / body mass)."""
        bw_g = np.asarray(self.params["body_mass_kg"]) * 1000.0
        conc = self.organ_activity(organ) / (self.volumes_l[organ] * 1000.0)[:, None]  # MBq/mL
        return conc / (self.administration.activity_mbq * self.decay_factor()[None, :] / bw_g[:, None])

    def cumulated_mbq_h(self, organ: str) -> np.ndarray:
        """Time-integrated activity (MBq h) from 0 to the last output time plus a physical-decay
        tail (the activity present then, decaying physically only), shape (N,)."""
        lam = math.log(2.0) / self.half_life_h
        if organ == "blood":
            k = len(ORGANS)
        else:
            k = ORGANS.index(organ)
        return self.y[:, -1, CUM0 + k] + self.organ_activity(organ)[:, -1] / lam


class _OrderedBDF(BDF):
    """scipy's BDF with one fill-reducing ordering for the whole run.

    The sparsity of ``I - c J`` never changes, so the minimum-degree ordering of SuperLU is
    computed once (per model) and every factorisation runs on the symmetrically permuted matrix
    in natural order: ~40 % less factorisation time and ~2x faster solves than re-ordering at
    every step (block-diagonal system of 200 patients, 23,800 states).
    """

    def __init__(self, *args: Any, perm: np.ndarray | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if perm is None:
            return
        pc = perm

        def lu(a: Any) -> Any:
            self.nlu += 1
            return splu(a[pc][:, pc].tocsc(), permc_spec="NATURAL")

        def solve_lu(factor: Any, b: np.ndarray) -> np.ndarray:
            x = factor.solve(b[pc])
            out = np.empty_like(x)
            out[pc] = x
            return out

        self.lu = lu
        self.solve_lu = solve_lu


def _one_blas_thread() -> Any:
    """Context limiting BLAS to one thread during a solve.

    BDF's error norms are BLAS dot products of vectors of ~24,000 states; with a multithreaded
    OpenBLAS each one wakes the BLAS threads, which on a loaded 2-core machine cost ~45 % of the CPU
    time of a population run (profiled: 472 norms, 3.9 s of 6.4 s). The sparse LU (SuperLU) does
    not use BLAS threads, so nothing is lost. Without threadpoolctl the solve runs unchanged.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - declared dependency; keep working without it
        from contextlib import nullcontext

        return nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def _ordering(model: Model, y: np.ndarray) -> np.ndarray:
    import scipy.sparse as sp

    probe = np.abs(y) + 1.0  # every structural entry non-zero
    a = (sp.eye(model.size, format="csc") - 0.01 * model.jacobian(probe)).tocsc()
    return np.asarray(splu(a, permc_spec="MMD_AT_PLUS_A").perm_c)


def _targets(phys, adm: Administration) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Distribution of the injectate over the states of a species block, shape (N, N_BLOCK)."""
    n = phys.n
    b = np.zeros((n, N_BLOCK))
    if adm.route == "iv":
        b[:, VEN] = 1.0
        return b
    g = phys.p
    if adm.lobe == "whole":
        share = {"right": g["hepatic_artery_right_fraction"], "left": 1.0 - g["hepatic_artery_right_fraction"]}
    else:
        other = "left" if adm.lobe == "right" else "right"
        share = {adm.lobe: np.full(n, 1.0 - adm.catheter_spill), other: np.full(n, adm.catheter_spill)}
    stream = g["ia_tumour_streaming"]
    for side in ("right", "left"):
        lobe, tum = f"liver_{side}", f"tumour_{side}"
        q_lobe = phys.q_arterial_in[lobe] + phys.q[tum]
        s_t = np.minimum(stream * phys.q[tum] / q_lobe, 0.95)  # tumour bed's share of the lobar injectate
        b[:, pool_index(tum, "vascular")] += share[side] * s_t
        b[:, pool_index(lobe, "vascular")] += share[side] * (1.0 - s_t)
    return b


def simulate(params: Mapping[str, np.ndarray], adm: Administration, times_h: Sequence[float], *,
             rtol: float = 1e-6, atol_rel: float = 1e-10) -> SimulationResult:
    """Integrate the model for every patient in ``params`` (arrays of shape (N,)).

    ``times_h``: output times (> 0, increasing). Raises InvalidInputError on a solver failure or a
    mass-balance error above :data:`MASS_BALANCE_TOL`.
    """
    t_out = np.asarray(sorted(float(t) for t in times_h))
    if t_out.size == 0 or not np.all(np.isfinite(t_out)) or t_out[0] <= 0:
        raise InvalidInputError("output times must be finite and > 0 h")
    if t_out[-1] > 24 * 365:
        raise InvalidInputError(f"end time {t_out[-1]} h is longer than a year")
    for k, v in params.items():
        a = np.asarray(v, dtype=float)
        if not np.all(np.isfinite(a)) or np.any(a < 0):
            raise InvalidInputError(f"PBPK parameter {k}: negative or non-finite value")
    nuclide, t_half = half_life_h(adm.nuclide)
    lam = math.log(2.0) / t_half
    phys = build_physiology(params, nuclide)
    model = Model(phys, lam)
    n = phys.n
    a0, p0 = adm.activity_mbq, adm.peptide_nmol
    b = _targets(phys, adm)
    y0 = np.zeros((n, N_STATE))
    t_inf = adm.infusion_min / 60.0
    if t_inf == 0:
        y0[:, P0:P0 + N_BLOCK] = p0 * b
        y0[:, H0:H0 + N_BLOCK] = a0 * b
    else:
        y0[:, P0 + SYRINGE] = p0
        y0[:, H0 + SYRINGE] = a0
    scale = np.zeros(N_STATE)
    scale[P0:P0 + N_BLOCK] = p0
    scale[H0:] = a0
    atol = np.tile(scale * atol_rel, n)
    # infusion source: constant peptide rate; label rate decays with the syringe content
    src_b = np.zeros((n, N_STATE))
    src_b[:, P0:P0 + N_BLOCK] = b * (p0 / t_inf if t_inf else 0.0)
    src_b[:, P0 + SYRINGE] -= p0 / t_inf if t_inf else 0.0
    src_h = np.zeros((n, N_STATE))
    src_h[:, H0:H0 + N_BLOCK] = b * (a0 / t_inf if t_inf else 0.0)
    src_h[:, H0 + SYRINGE] -= a0 / t_inf if t_inf else 0.0
    src_b, src_h = src_b.ravel(), src_h.ravel()

    def fun_inf(t: float, y: np.ndarray) -> np.ndarray:
        return model.rhs(y, src_b + src_h * math.exp(-lam * t))

    def fun(t: float, y: np.ndarray) -> np.ndarray:
        return model.rhs(y)

    def jac(t: float, y: np.ndarray):  # type: ignore[no-untyped-def]
        return model.jacobian(y)

    pieces_t: list[np.ndarray] = []
    pieces_y: list[np.ndarray] = []
    steps = 0
    y_start = y0.ravel()
    perm = _ordering(model, y_start)
    t_start = 0.0
    segments = [(fun_inf, t_inf), (fun, float(t_out[-1]))] if t_inf > 0 else [(fun, float(t_out[-1]))]
    for f, t_end in segments:
        if t_end <= t_start:
            continue
        sel = t_out[(t_out > t_start) & (t_out <= t_end)]
        t_eval = np.unique(np.concatenate([sel, [t_end]]))
        try:
            with _one_blas_thread():
                sol = solve_ivp(f, (t_start, t_end), y_start, method=_OrderedBDF, jac=jac, t_eval=t_eval,
                                rtol=rtol, atol=atol, first_step=min(1e-4, t_end - t_start), perm=perm)
        except (ValueError, ArithmeticError, RuntimeError) as exc:
            raise InvalidInputError(f"PBPK solver failed: {exc}") from None
        if not sol.success:
            raise InvalidInputError(f"PBPK solver failed: {sol.message}")
        steps += int(sol.nfev)
        keep = np.isin(sol.t, sel)
        pieces_t.append(sol.t[keep])
        pieces_y.append(sol.y[:, keep])
        y_start = sol.y[:, -1].copy()
        t_start = t_end
    t_all = np.concatenate(pieces_t)
    y_all = np.concatenate(pieces_y, axis=1).reshape(n, N_STATE, -1).transpose(0, 2, 1)
    lab = y_all[:, :, H0:H0 + N_BLOCK].sum(axis=2)
    pep = y_all[:, :, P0:P0 + N_BLOCK].sum(axis=2)
    mb = float(np.max(np.abs(lab - a0)) / a0)
    pb = float(np.max(np.abs(pep - p0)) / p0)
    if not (np.all(np.isfinite(y_all)) and mb <= MASS_BALANCE_TOL and pb <= MASS_BALANCE_TOL):
        raise InvalidInputError(f"PBPK solution refused: mass-balance error {mb:.3g} (label), {pb:.3g} (peptide) "
                                f"exceeds {MASS_BALANCE_TOL:g} of the administered amount")
    volumes = {**phys.v_tissue}
    return SimulationResult(t_all, y_all, adm, nuclide, t_half, phys.p, mb, pb, volumes, steps)


def summary_percent_ia(res: SimulationResult, patient: int = 0) -> dict[str, dict[str, float]]:
    """%IA (decay-corrected) per organ at each output time for one patient."""
    out: dict[str, dict[str, float]] = {}
    for organ in (*ORGANS, "blood", "urine"):
        vals = res.percent_ia(organ)[patient]
        out[organ] = {f"{t:g}": round(float(v), 4) for t, v in zip(res.times_h, vals)}
    return out


__all__ += ["summary_percent_ia", "SINK"]


def _simulate_chunk(args: tuple[Any, ...]) -> SimulationResult:
    """One chunk of a population run. The stacked loose-tolerance BDF can (rarely) fail on the
    joint step-size control of a chunk whose patients each solve fine (seen: lutia2024, n = 1000,
    seed 20240101, patients 400-599); such a chunk is split in halves, down to single patients,
    and a single patient is re-solved at the default (tight) tolerances. Mass balance is checked
    on every piece; any other error is raised as is."""
    sub, adm, times_h, rtol, atol_rel = args
    try:
        return simulate(sub, adm, times_h, rtol=rtol, atol_rel=atol_rel)
    except InvalidInputError as exc:
        if not str(exc).startswith("PBPK solver failed"):
            raise
        n = int(np.asarray(next(iter(sub.values()))).size)
        if n == 1:
            return simulate(sub, adm, times_h)
        half = n // 2
        parts = [_simulate_chunk(({k: np.asarray(v)[sl] for k, v in sub.items()}, adm, times_h, rtol, atol_rel))
                 for sl in (slice(0, half), slice(half, n))]
        return _merge(parts, sub, adm)


def _merge(parts: Sequence[SimulationResult], params: Mapping[str, np.ndarray], adm: Administration) -> SimulationResult:
    if len(parts) == 1:
        return parts[0]
    first = parts[0]
    return SimulationResult(
        first.times_h, np.concatenate([r.y for r in parts]), adm, first.nuclide, first.half_life_h,
        {k: np.asarray(v) for k, v in params.items()}, max(r.mass_balance_error for r in parts),
        max(r.peptide_balance_error for r in parts),
        {k: np.concatenate([np.asarray(r.volumes_l[k]) for r in parts]) for k in first.volumes_l},
        sum(r.n_steps for r in parts))


def simulate_population(params: Mapping[str, np.ndarray], adm: Administration, times_h: Sequence[float], *,
                        chunk: int = 200, rtol: float = 1e-3, atol_rel: float = 1e-5,
                        workers: int = 1) -> SimulationResult:
    """:func:`simulate` for a large virtual population, in chunks of ``chunk`` patients.

    Population runs use looser step control (rtol 1e-3, atol 1e-5 of the dose; the outputs used,
    ratios of organ uptake, agree with rtol 1e-6 to better than 1 %, tested). Mass balance does not
    depend on the tolerances (a linear invariant of BDF) and is still checked per chunk.
    """
    n = int(np.asarray(next(iter(params.values()))).size)
    if chunk < 1:
        raise InvalidInputError("chunk size must be >= 1")
    if workers < 1:
        raise InvalidInputError("workers must be >= 1")
    jobs = [({k: np.asarray(v)[start:start + chunk] for k, v in params.items()}, adm, list(times_h), rtol, atol_rel)
            for start in range(0, n, chunk)]
    if workers > 1 and len(jobs) > 1:
        # one process per core: each chunk is independent (no shared state, results pickled back)
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        ctx = multiprocessing.get_context("fork") if "fork" in multiprocessing.get_all_start_methods() else None
        with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=ctx) as pool:
            parts = list(pool.map(_simulate_chunk, jobs))
    else:
        parts = [_simulate_chunk(j) for j in jobs]
    return _merge(parts, params, adm)


__all__ += ["simulate_population"]

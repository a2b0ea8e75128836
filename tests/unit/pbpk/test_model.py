"""PBPK model: mass balance, analytic solutions, Jacobian, parameter checks, refusals."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg

from lutarterial.errors import InvalidInputError
from lutarterial.pbpk import MASS_BALANCE_TOL, Administration, load_parameters, simulate
import lutarterial.pbpk.solver as sim_mod
from lutarterial.pbpk.model import H0, N_BLOCK, N_STATE, P0, SINK, SYRINGE, Model, build_physiology
from lutarterial.pbpk.parameters import half_life_h
from lutarterial.pbpk.solver import simulate_population

TIMES = [0.1, 0.5, 1.0, 4.0, 24.0]


def typical(**over: float) -> dict[str, np.ndarray]:
    p = load_parameters().sample(1, None, variability=False)
    for k, v in over.items():
        p[k] = np.array([v])
    return p


def no_receptors() -> dict[str, np.ndarray]:
    return typical(receptor_liver_nmol=0.0, receptor_spleen_nmol=0.0, receptor_kidneys_nmol=0.0,
                   receptor_gut_nmol=0.0, receptor_rest_nmol=0.0, tumour_receptor_nmol_per_l=0.0,
                   k_degradation_per_h=0.0)


def balance(res) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """Recomputed here from the states, not taken from the result."""
    lab = res.y[:, :, H0:H0 + N_BLOCK].sum(axis=2)
    pep = res.y[:, :, P0:P0 + N_BLOCK].sum(axis=2)
    a0, p0 = res.administration.activity_mbq, res.administration.peptide_nmol
    return float(np.abs(lab - a0).max() / a0), float(np.abs(pep - p0).max() / p0)


@pytest.mark.parametrize("route,lobe,nuclide,infusion", [
    ("iv", "whole", "Ga-68", 0.0), ("iv", "whole", "Lu-177", 30.0), ("iah", "right", "Lu-177", 20.0),
    ("iah", "left", "In-111", 1.0), ("iah", "whole", "Y-90", 0.0), ("iah", "whole", "Ga-68", 1.0)])
def test_mass_balance_at_every_output_time(route: str, lobe: str, nuclide: str, infusion: float) -> None:
    adm = Administration(route, nuclide, 7400.0 if nuclide != "Ga-68" else 150.0, 200.0, lobe=lobe,
                         infusion_min=infusion)
    res = simulate(typical(), adm, TIMES)
    lab, pep = balance(res)
    assert lab <= MASS_BALANCE_TOL and pep <= MASS_BALANCE_TOL
    assert res.mass_balance_error <= MASS_BALANCE_TOL
    assert np.all(res.y[:, :, :2 * N_BLOCK] > -1e-6 * 7400)  # no meaningful negative amounts


def test_decayed_state_is_exactly_the_physical_decay() -> None:
    # whatever the biology, the label present + excreted decays with the physical half-life
    adm = Administration("iv", "Ga-68", 150.0, 20.0, infusion_min=0.0)
    res = simulate(typical(), adm, TIMES)
    lam = math.log(2) / half_life_h("Ga-68")[1]
    expected = 150.0 * (1 - np.exp(-lam * np.array(TIMES)))
    assert np.allclose(res.y[0, :, H0 + SINK], expected, rtol=1e-6, atol=1e-9)
    lab, _ = balance(res)
    assert lab <= MASS_BALANCE_TOL


def test_without_receptors_label_is_the_decayed_peptide_in_every_pool() -> None:
    adm = Administration("iah", "Lu-177", 7400.0, 100.0, lobe="right", infusion_min=0.0)
    res = simulate(no_receptors(), adm, TIMES)
    lam = math.log(2) / half_life_h("Lu-177")[1]
    ratio = adm.activity_mbq / adm.peptide_nmol
    for k, t in enumerate(TIMES):
        hot = res.y[0, k, H0:H0 + SINK]
        cold = res.y[0, k, P0:P0 + SINK] * ratio * math.exp(-lam * t)
        assert np.allclose(hot, cold, rtol=1e-5, atol=1e-8 * 7400)
    assert max(balance(res)) <= MASS_BALANCE_TOL


def test_without_receptors_the_model_is_linear_and_matches_the_matrix_exponential() -> None:
    p = no_receptors()
    adm = Administration("iv", "Lu-177", 1000.0, 50.0, infusion_min=0.0)
    res = simulate(p, adm, TIMES)
    model = Model(build_physiology(p, "Lu-177"), math.log(2) / half_life_h("Lu-177")[1])
    lin = model.L.toarray()
    y0 = np.zeros(N_STATE)
    y0[P0 + 1] = adm.peptide_nmol
    y0[H0 + 1] = 1000.0
    for k, t in enumerate(TIMES):
        exact = scipy.linalg.expm(lin * t) @ y0
        assert np.allclose(res.y[0, k], exact, rtol=1e-4, atol=1e-6 * 1000)
    # linear: the distribution does not depend on the peptide amount
    res2 = simulate(p, Administration("iv", "Lu-177", 1000.0, 500.0, infusion_min=0.0), TIMES)
    assert np.allclose(res.percent_ia("tumour_right"), res2.percent_ia("tumour_right"), rtol=1e-4)
    assert max(balance(res2)) <= MASS_BALANCE_TOL


def test_receptor_saturation_lowers_tumour_uptake_with_peptide_mass() -> None:
    low = simulate(typical(), Administration("iv", "Ga-68", 150.0, 2.0), [1.0])
    high = simulate(typical(), Administration("iv", "Ga-68", 150.0, 500.0), [1.0])
    assert high.percent_ia("tumour_right")[0, -1] < 0.7 * low.percent_ia("tumour_right")[0, -1]
    assert max(balance(low)) <= MASS_BALANCE_TOL and max(balance(high)) <= MASS_BALANCE_TOL


def test_analytic_jacobian_matches_finite_differences() -> None:
    p = typical()
    model = Model(build_physiology(p, "Lu-177"), 0.1)  # 177Lu: the uptake-rate ratios scale k_on too
    rng = np.random.default_rng(3)
    y = rng.uniform(0.0, 5.0, N_STATE)
    jac = model.jacobian(y).toarray()
    h = 1e-6
    fd = np.empty_like(jac)
    f0 = model.rhs(y)
    for j in range(N_STATE):
        e = y.copy()
        e[j] += h
        fd[:, j] = (model.rhs(e) - f0) / h
    assert np.allclose(jac, fd, rtol=1e-4, atol=1e-5)


def test_iah_gives_the_tumour_bed_a_first_pass_and_iv_does_not() -> None:
    iv = simulate(typical(), Administration("iv", "Ga-68", 150.0, 20.0), [1.0])
    right = simulate(typical(), Administration("iah", "Ga-68", 150.0, 20.0, lobe="right"), [1.0])
    assert right.suv("tumour_right")[0, -1] > 2.0 * iv.suv("tumour_right")[0, -1]
    # the other lobe only sees recirculation: no gain
    assert right.suv("tumour_left")[0, -1] <= 1.01 * iv.suv("tumour_left")[0, -1]
    for r in (iv, right):
        assert max(balance(r)) <= MASS_BALANCE_TOL


def test_population_tolerances_agree_with_strict_solution() -> None:
    pp = load_parameters()
    params = pp.sample(8, np.random.default_rng(5))
    adm = Administration("iah", "Ga-68", 150.0, 20.0, lobe="whole")
    strict = simulate(params, adm, [1.0])
    loose = simulate_population(params, adm, [1.0], chunk=3)
    assert np.allclose(loose.suv("tumour_right"), strict.suv("tumour_right"), rtol=0.01)
    assert loose.mass_balance_error <= MASS_BALANCE_TOL


def test_mass_balance_failure_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sim_mod, "MASS_BALANCE_TOL", -1.0)
    with pytest.raises(InvalidInputError, match="mass-balance"):
        simulate(typical(), Administration("iv", "Ga-68", 150.0, 20.0), [1.0])


def test_solver_failure_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    class Failed:
        success = False
        message = "step size too small"

    monkeypatch.setattr(sim_mod, "solve_ivp", lambda *a, **k: Failed())
    with pytest.raises(InvalidInputError, match="solver failed: step size"):
        simulate(typical(), Administration("iv", "Ga-68", 150.0, 20.0), [1.0])


def test_population_chunk_whose_joint_solve_fails_is_split_and_still_balanced(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A stacked solve that fails for more than one patient (as lutia2024 n=1000 did once) is split
    down to single patients; the result equals the per-patient solutions and keeps mass balance.
    A patient that fails alone is still an error."""
    real = sim_mod.simulate
    calls: list[int] = []

    def fails_when_stacked(params, adm, times_h, **kw):  # type: ignore[no-untyped-def]
        n = int(np.asarray(next(iter(params.values()))).size)
        calls.append(n)
        if n > 1:
            raise InvalidInputError("PBPK solver failed: Required step size is less than spacing between numbers.")
        return real(params, adm, times_h, **kw)

    pop = load_parameters().sample(3, np.random.default_rng(5))
    adm = Administration("iah", "Lu-177", 7400.0, 200.0, lobe="right", infusion_min=20.0)
    monkeypatch.setattr(sim_mod, "simulate", fails_when_stacked)
    res = simulate_population(pop, adm, [1.0, 24.0])
    assert res.y.shape == (3, 2, N_STATE) and max(balance(res)) <= MASS_BALANCE_TOL
    assert calls[0] == 3 and calls.count(1) >= 3
    for i in range(3):
        one = real({k: v[i:i + 1] for k, v in pop.items()}, adm, [1.0, 24.0], rtol=1e-3, atol_rel=1e-5)
        assert np.allclose(res.y[i], one.y[0], rtol=1e-12, atol=0.0)  # the same single-patient solve

    def always_fails(params, adm, times_h, **kw):  # type: ignore[no-untyped-def]
        raise InvalidInputError("PBPK solver failed: step size too small")

    monkeypatch.setattr(sim_mod, "simulate", always_fails)
    with pytest.raises(InvalidInputError, match="solver failed"):
        simulate_population(pop, adm, [1.0])


@pytest.mark.parametrize("kwargs,match", [
    (dict(route="ia"), "route"), (dict(lobe="middle"), "lobe"), (dict(nuclide="Tc-99m"), "no decay data"),
    (dict(activity_mbq=-1.0), "activity"), (dict(activity_mbq=1e300), "activity"),
    (dict(peptide_ug=2e5), "peptide"), (dict(activity_mbq=0.0), "activity"), (dict(activity_mbq=float("nan")), "finite"),
    (dict(peptide_ug=0.0), "peptide"), (dict(catheter_spill=1.5), "outside 0-1"),
    (dict(infusion_min=-1.0), "infusion")])
def test_bad_administration_is_refused(kwargs: dict, match: str) -> None:
    base = dict(route="iv", nuclide="Lu-177", activity_mbq=7400.0, peptide_ug=200.0)
    with pytest.raises(InvalidInputError, match=match):
        Administration(**{**base, **kwargs})


def test_nuclide_names_and_half_lives() -> None:
    assert half_life_h("177Lu") == ("Lu-177", pytest.approx(159.528))
    assert half_life_h("in111")[1] == pytest.approx(67.31)  # 2.8047 d (NNDC)
    assert half_life_h("Ga68")[1] == pytest.approx(1.1285)


def test_output_times_are_checked() -> None:
    with pytest.raises(InvalidInputError, match="output times"):
        simulate(typical(), Administration("iv", "Ga-68", 150.0, 20.0), [0.0, 1.0])
    with pytest.raises(InvalidInputError, match="negative or non-finite"):
        simulate(typical(gfr_l_per_h=float("nan")), Administration("iv", "Ga-68", 150.0, 20.0), [1.0])

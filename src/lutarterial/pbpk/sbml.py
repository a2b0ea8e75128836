"""SBML Level 3 export of the typical-patient model (optional: needs python-libsbml).

One species per state (amounts: nmol for peptide, MBq for the label, MBq h for cumulated
activity, nmol for internalised receptors), one rate rule per species written out from the
linear operator's row plus the receptor-occupancy terms, so that any SBML simulator (COPASI,
libroadrunner, PyCNO's tooling) reproduces :func:`lutarterial.pbpk.simulate` for a bolus given as
the initial amount in the venous plasma.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from lutarterial.errors import InvalidInputError
from lutarterial.pbpk.model import (CUM0, H0, N_STATE, ORGANS, P0, POOLS, RECEPTOR_ORGANS, RIN0, Model,
                                    build_physiology, pool_index)
from lutarterial.pbpk.parameters import half_life_h, load_parameters

__all__ = ["state_names", "write_sbml"]


def state_names() -> list[str]:
    """Identifier of every state of one patient, in model order."""
    block = ["art", "ven", *[f"{o}_{p}" for o in ORGANS for p in POOLS], "urine", "sink", "syringe", "kidney_tubule"]
    names = [f"P_{b}" for b in block] + [f"H_{b}" for b in block]
    names += [f"cum_{o}" for o in ORGANS] + ["cum_blood"] + [f"Rin_{o}" for o in RECEPTOR_ORGANS]
    assert len(names) == N_STATE
    return names


def write_sbml(path: str | Path, *, nuclide: str = "Lu-177", activity_mbq: float = 7400.0,
               peptide_nmol: float = 139.3) -> Path:
    try:
        import libsbml  # type: ignore[import-not-found]
    except ImportError:  # pragma: no cover - optional dependency
        raise InvalidInputError("SBML export needs python-libsbml (pip install 'lutarterial[sbml]')") from None
    name, t_half = half_life_h(nuclide)
    p = load_parameters().sample(1, None, variability=False)
    model = Model(build_physiology(p, name), math.log(2.0) / t_half)
    lin = model.L.tocsr()
    names = state_names()
    doc = libsbml.SBMLDocument(3, 2)
    m = doc.createModel()
    m.setId("lutarterial_sstr2_pbpk")
    m.setName(f"lutarterial SSTR2 PBPK ({name}), typical patient")
    m.setTimeUnits("dimensionless")
    c = m.createCompartment()
    c.setId("body")
    c.setConstant(True)
    c.setSize(1.0)
    c.setSpatialDimensions(3)
    y0 = np.zeros(N_STATE)
    y0[P0 + 1] = peptide_nmol
    y0[H0 + 1] = activity_mbq
    for i, n in enumerate(names):
        s = m.createSpecies()
        s.setId(n)
        s.setCompartment("body")
        s.setInitialAmount(float(y0[i]))
        s.setHasOnlySubstanceUnits(True)
        s.setBoundaryCondition(False)
        s.setConstant(False)
    kv = {o: float(model._kv[0, k]) for k, o in enumerate(RECEPTOR_ORGANS)}
    extra: dict[int, list[str]] = {}
    for k, o in enumerate(RECEPTOR_ORGANS):
        i, b = pool_index(o, "interstitial"), pool_index(o, "bound")
        occ = f"({names[P0 + b]} + {names[RIN0 + k]})"
        for s0 in (P0, H0):
            term = f"{kv[o]!r} * {names[s0 + i]} * {occ}"
            extra.setdefault(s0 + i, []).append(f"+ {term}")
            extra.setdefault(s0 + b, []).append(f"- {term}")
    for r in range(N_STATE):
        start, end = lin.indptr[r], lin.indptr[r + 1]
        terms = [f"{'+' if v >= 0 else '-'} {abs(float(v))!r} * {names[j]}"
                 for j, v in zip(lin.indices[start:end], lin.data[start:end]) if v != 0]
        terms += extra.get(r, [])
        formula = " ".join(terms).lstrip("+ ") if terms else "0"
        if formula.startswith("- "):
            formula = "-" + formula[2:]
        rule = m.createRateRule()
        rule.setVariable(names[r])
        ast = libsbml.parseL3Formula(formula)
        if ast is None:  # pragma: no cover - formulas are generated
            raise InvalidInputError(f"SBML export: cannot parse the rate of {names[r]}")
        rule.setMath(ast)
    out = Path(path)
    if not libsbml.writeSBMLToFile(doc, str(out)):
        raise InvalidInputError(f"cannot write SBML to {out}")
    return out


_ = CUM0  # cumulated-activity states are part of state_names()

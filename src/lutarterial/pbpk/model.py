"""The SSTR2 radiopeptide PBPK model: state layout, linear operator, binding terms, Jacobian.

Structure after the published SSTR2 PBPK models (Siebinga et al. 2021/2023; Kletting/Glatting
group) and PyCNO's per-organ pools (see docs/pbpk.md for the equations):

* blood: arterial and venous plasma; lungs between them;
* organs: liver right and left lobe (hepatic-artery and portal inflow; gut and spleen drain into
  the portal vein, split between the lobes), liver metastases of each lobe (arterial supply only),
  extrahepatic tumour, gut, spleen, kidneys (glomerular filtration into a tubule/collecting-system
  pool, tubular reabsorption into the kidney's cellular pool, release), red marrow, rest of body;
* per organ four pools: vascular (plasma), interstitial, receptor-bound, internalised;
* two species: total peptide (labelled + unlabelled, nmol), which competes for the receptors, and
  the label (MBq), which follows the peptide but decays and, being a residualising radiometal,
  stays in the cell when the internalised peptide is degraded.

The whole system for N virtual patients is one block-diagonal system ``dy/dt = L y + g(y) + u(t)``:
``L`` is linear (flows, exchange, association with free receptors at zero occupancy, dissociation,
internalisation, release, degradation, filtration, decay, cumulated activity), ``g`` the bilinear
receptor-occupancy correction (``-k_on c_i B``), ``u`` the infusion. The Jacobian ``L + dg/dy`` is
built analytically as a sparse matrix. Conserved sums (peptide: pools + urine + degraded +
syringe; label: pools + urine + decayed + syringe) are linear invariants, which BDF keeps exactly
up to round-off; :mod:`lutarterial.pbpk.solver` still checks them after every solve.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from lutarterial.errors import InvalidInputError

__all__ = [
    "ORGANS",
    "POOLS",
    "TUMOURS",
    "N_BLOCK",
    "N_STATE",
    "P0",
    "H0",
    "CUM0",
    "RIN0",
    "RECEPTOR_ORGANS",
    "ART",
    "VEN",
    "URINE",
    "SINK",
    "SYRINGE",
    "TUBULE",
    "pool_index",
    "Physiology",
    "build_physiology",
    "UPTAKE_RATIO_PREFIX",
    "Model",
]

ORGANS: tuple[str, ...] = ("lungs", "liver_right", "liver_left", "tumour_right", "tumour_left",
                           "tumour_extrahepatic", "gut", "spleen", "kidneys", "red_marrow", "rest")
TUMOURS = ("tumour_right", "tumour_left", "tumour_extrahepatic")
POOLS: tuple[str, ...] = ("vascular", "interstitial", "bound", "internalised")
_K = {name: k for k, name in enumerate(ORGANS)}

ART, VEN = 0, 1
URINE = 2 + 4 * len(ORGANS)  # 46
SINK = URINE + 1  # peptide: degraded; label: decayed
SYRINGE = URINE + 2
TUBULE = URINE + 3  # filtrate in the kidney's tubules and collecting system (counted in the kidneys)
N_BLOCK = TUBULE + 1  # 50 states per species
P0 = 0  # offset of the peptide block
H0 = N_BLOCK  # offset of the label block
CUM0 = 2 * N_BLOCK  # cumulated activity (MBq h): one per organ, then blood
#: organs that can carry SSTR2 (amount may be zero); each has an internalised-receptor state
RECEPTOR_ORGANS: tuple[str, ...] = ("liver_right", "liver_left", "tumour_right", "tumour_left",
                                    "tumour_extrahepatic", "gut", "spleen", "kidneys", "rest")
RIN0 = CUM0 + len(ORGANS) + 1  # internalised (recycling) receptors, nmol
N_STATE = RIN0 + len(RECEPTOR_ORGANS)  # 121 states per patient


def pool_index(organ: str, pool: str) -> int:
    """Index of ``organ``'s ``pool`` inside a species block."""
    return 2 + 4 * _K[organ] + POOLS.index(pool)


@dataclass(frozen=True)
class Physiology:
    """Per-patient derived quantities (arrays of shape (N,)), all in L, L/h, nmol, 1/h."""

    n: int
    v_art: np.ndarray
    v_ven: np.ndarray
    v_tissue: dict[str, np.ndarray]
    v_vasc: dict[str, np.ndarray]
    v_int: dict[str, np.ndarray]
    q: dict[str, np.ndarray]  # plasma flow through each organ
    q_arterial_in: dict[str, np.ndarray]  # plasma flow from the arteries (liver lobes: hepatic artery)
    q_portal: np.ndarray
    ps: dict[str, np.ndarray]
    receptors: dict[str, np.ndarray]
    p: Mapping[str, np.ndarray]
    #: nuclide-specific multiplier of the receptor-mediated uptake rate (k_on) per receptor organ
    #: (1 for the 68Ga reference compound; Siebinga 2023 ratios for 177Lu, see UPTAKE_RATIO_ORGANS)
    kon_scale: Mapping[str, np.ndarray] | None = None

    def kon_factor(self, organ: str) -> np.ndarray:
        if self.kon_scale is None or organ not in self.kon_scale:
            return np.ones(self.n)
        return self.kon_scale[organ]


def _arr(p: Mapping[str, np.ndarray], name: str, n: int) -> np.ndarray:
    return np.broadcast_to(np.asarray(p[name], dtype=float), (n,)).astype(float)


#: Nuclides with compound-specific uptake-rate ratios in the parameter table
#: (``<prefix>_uptake_ratio_spleen|kidneys|tumour``, relative to the 68Ga-labelled compound).
UPTAKE_RATIO_PREFIX = {"Lu-177": "lu177"}


def build_physiology(p: Mapping[str, np.ndarray], nuclide: str | None = None) -> Physiology:
    """Volumes, plasma flows, PS products and receptor amounts from a sampled parameter table.

    ``nuclide`` (canonical name) selects the compound: for a nuclide listed in
    :data:`UPTAKE_RATIO_PREFIX` the receptor-mediated uptake rate of the spleen and the tumours
    (k_on) and the tubular reabsorption of the kidneys are multiplied by the compound's
    uptake-rate ratios (177Lu vs 68Ga: Siebinga et al., EJNMMI Phys 2023). The population values
    describe the 68Ga compound (the imaging data they come from); other nuclides use them as is.
    """
    n = int(np.asarray(p["cardiac_output_l_per_h"]).size)
    g = {k: _arr(p, k, n) for k in p}
    prefix = UPTAKE_RATIO_PREFIX.get(nuclide or "")
    kon_scale: dict[str, np.ndarray] | None = None
    if prefix is not None:
        kon_scale = {"spleen": g[f"{prefix}_uptake_ratio_spleen"]}
        for t in TUMOURS:
            kon_scale[t] = g[f"{prefix}_uptake_ratio_tumour"]
        # renal uptake is tubular reabsorption: its rate carries the kidney ratio
        g["tubular_reabsorption_fraction"] = np.minimum(
            g["tubular_reabsorption_fraction"] * g[f"{prefix}_uptake_ratio_kidneys"], 1.0)
    plasma = 1.0 - g["haematocrit"]
    qco = g["cardiac_output_l_per_h"] * plasma
    v_plasma = g["blood_volume_l"] * plasma
    v_art = v_plasma * g["arterial_blood_fraction"]
    v_ven = v_plasma - v_art
    fr = g["liver_right_lobe_fraction"]
    har = g["hepatic_artery_right_fraction"]
    tissue = {
        "lungs": g["volume_lungs_l"], "liver_right": g["volume_liver_l"] * fr,
        "liver_left": g["volume_liver_l"] * (1.0 - fr),
        "tumour_right": g["tumour_volume_right_ml"] / 1000.0, "tumour_left": g["tumour_volume_left_ml"] / 1000.0,
        "tumour_extrahepatic": g["tumour_volume_extrahepatic_ml"] / 1000.0,
        "gut": g["volume_gut_l"], "spleen": g["volume_spleen_l"], "kidneys": g["volume_kidneys_l"],
        "red_marrow": g["volume_red_marrow_l"],
    }
    rest = g["body_mass_kg"] - g["blood_volume_l"] - sum(tissue.values())
    if np.any(rest <= 1.0):
        raise InvalidInputError("PBPK parameters: organ, tumour and blood volumes leave no rest of body "
                                f"(smallest rest {float(rest.min()):.2f} L); check body mass and tumour volumes")
    tissue["rest"] = rest
    vf = {o: g[f"vascular_fraction_{o}"] for o in ("lungs", "gut", "spleen", "kidneys", "red_marrow", "rest")}
    itf = {o: g[f"interstitial_fraction_{o}"] for o in vf}
    for lobe in ("liver_right", "liver_left"):
        vf[lobe], itf[lobe] = g["vascular_fraction_liver"], g["interstitial_fraction_liver"]
    for t in TUMOURS:
        vf[t], itf[t] = g["tumour_vascular_fraction"], g["tumour_interstitial_fraction"]
    tiny = 1e-9  # an absent tumour keeps positive volumes (its flows and receptors are zero)
    v_vasc = {o: np.maximum(tissue[o] * vf[o] * plasma, tiny) for o in ORGANS}
    v_int = {o: np.maximum(tissue[o] * itf[o], tiny) for o in ORGANS}

    q_ha = qco * g["flow_fraction_hepatic_artery"]
    perf = g["tumour_perfusion_ml_per_min_per_ml"] * 60.0 / 1000.0 * plasma  # L/h plasma per mL tumour
    q_t = {t: perf * g[f"tumour_volume_{t.split('_', 1)[1]}_ml"] for t in TUMOURS}
    q_ha_lobe = {"liver_right": q_ha * har, "liver_left": q_ha * (1.0 - har)}
    for lobe, t in (("liver_right", "tumour_right"), ("liver_left", "tumour_left")):
        # a tumour cannot take more than 80 % of its lobe's arterial flow
        q_t[t] = np.minimum(q_t[t], 0.8 * q_ha_lobe[lobe])
    q = {
        "gut": qco * g["flow_fraction_gut"], "spleen": qco * g["flow_fraction_spleen"],
        "kidneys": qco * g["flow_fraction_kidneys"], "red_marrow": qco * g["flow_fraction_red_marrow"],
        **q_t, "lungs": qco,
    }
    q_portal = q["gut"] + q["spleen"]
    q_art_in = {"liver_right": q_ha_lobe["liver_right"] - q_t["tumour_right"],
                "liver_left": q_ha_lobe["liver_left"] - q_t["tumour_left"]}
    q["liver_right"] = q_art_in["liver_right"] + fr * q_portal
    q["liver_left"] = q_art_in["liver_left"] + (1.0 - fr) * q_portal
    q["rest"] = qco - q_ha - q["gut"] - q["spleen"] - q["kidneys"] - q["red_marrow"] - q["tumour_extrahepatic"]
    if np.any(q["rest"] <= 0):
        raise InvalidInputError("PBPK parameters: organ and tumour flows exceed the cardiac output")
    for o in ("gut", "spleen", "kidneys", "red_marrow", "rest", *TUMOURS):
        q_art_in[o] = q[o]
    if np.any(g["gfr_l_per_h"] * g["fraction_unbound_plasma"] >= q["kidneys"]):
        raise InvalidInputError("PBPK parameters: glomerular filtration exceeds the renal plasma flow")
    ps_key = {"lungs": "lungs", "liver_right": "liver", "liver_left": "liver", "gut": "gut", "spleen": "spleen",
              "kidneys": "kidneys", "red_marrow": "red_marrow", "rest": "rest"}
    ps = {o: g[f"ps_over_q_{ps_key[o]}"] * q[o] for o in ps_key}
    for t in TUMOURS:
        ps[t] = g["ps_over_q_tumour"] * q[t]
    rec = {o: np.zeros(n) for o in ORGANS}
    rec["liver_right"] = g["receptor_liver_nmol"] * fr
    rec["liver_left"] = g["receptor_liver_nmol"] * (1.0 - fr)
    for o in ("spleen", "kidneys", "gut", "rest"):
        rec[o] = g[f"receptor_{o}_nmol"]
    for t in TUMOURS:
        rec[t] = g["tumour_receptor_nmol_per_l"] * g[f"tumour_receptor_scale_{t.split('_', 1)[1]}"] * tissue[t]
    return Physiology(n, v_art, v_ven, tissue, v_vasc, v_int, q, q_art_in, q_portal, ps, rec, g, kon_scale)


class Model:
    """The stacked ODE system of N virtual patients for one nuclide (decay constant ``lam``)."""

    def __init__(self, phys: Physiology, lam_per_h: float) -> None:
        if not (math.isfinite(lam_per_h) and lam_per_h > 0):
            raise InvalidInputError(f"decay constant {lam_per_h} must be positive")
        self.phys = phys
        self.lam = lam_per_h
        self.n = phys.n
        self.size = self.n * N_STATE
        self.L = self._linear().tocsr()
        self._binding_setup()

    # --- linear part -------------------------------------------------------------------------
    def _linear(self) -> sp.coo_matrix:
        ph, g, n = self.phys, self.phys.p, self.n
        rows: list[np.ndarray] = []
        cols: list[np.ndarray] = []
        vals: list[np.ndarray] = []
        off = np.arange(n) * N_STATE

        def move(src: int, dst: int | None, k: np.ndarray, species: tuple[int, ...] = (P0, H0)) -> None:
            """First-order transfer src -> dst (dst None: leaves the system; only used for nothing)."""
            k = np.broadcast_to(k, (n,))
            for s0 in species:
                rows.append(off + s0 + src)
                cols.append(off + s0 + src)
                vals.append(-k)
                if dst is not None:
                    rows.append(off + s0 + dst)
                    cols.append(off + s0 + src)
                    vals.append(k.copy())

        def vi(o: str, pool: str) -> int:
            return pool_index(o, pool)

        qco = ph.q["lungs"]
        move(VEN, vi("lungs", "vascular"), qco / ph.v_ven)
        move(vi("lungs", "vascular"), ART, qco / ph.v_vasc["lungs"])
        for o in ("liver_right", "liver_left", "gut", "spleen", "kidneys", "red_marrow", "rest", *TUMOURS):
            move(ART, vi(o, "vascular"), ph.q_arterial_in[o] / ph.v_art)
        fr = g["liver_right_lobe_fraction"]
        for o in ("gut", "spleen"):
            move(vi(o, "vascular"), vi("liver_right", "vascular"), fr * ph.q[o] / ph.v_vasc[o])
            move(vi(o, "vascular"), vi("liver_left", "vascular"), (1.0 - fr) * ph.q[o] / ph.v_vasc[o])
        for o in ("liver_right", "liver_left", "kidneys", "red_marrow", "rest", *TUMOURS):
            move(vi(o, "vascular"), VEN, ph.q[o] / ph.v_vasc[o])
        # capillary exchange (PS), binding at free receptors, cellular kinetics
        kon, koff = g["k_on_l_per_nmol_h"], g["k_off_per_h"]
        kint, krel, kdeg = g["k_internalisation_per_h"], g["k_release_per_h"], g["k_degradation_per_h"]
        for o in ORGANS:
            move(vi(o, "vascular"), vi(o, "interstitial"), ph.ps[o] / ph.v_vasc[o])
            move(vi(o, "interstitial"), vi(o, "vascular"), ph.ps[o] / ph.v_int[o])
            if o in RECEPTOR_ORGANS:
                move(vi(o, "interstitial"), vi(o, "bound"), kon * ph.kon_factor(o) * ph.receptors[o] / ph.v_int[o])
                move(vi(o, "bound"), vi(o, "interstitial"), koff)
                move(vi(o, "bound"), vi(o, "internalised"), kint)
                # the receptor is internalised with its ligand and recycles to the membrane
                r = RIN0 + RECEPTOR_ORGANS.index(o)
                rows.extend([off + r, off + r])
                cols.extend([off + P0 + vi(o, "bound"), off + r])
                vals.extend([np.broadcast_to(kint, (n,)).copy(), -np.broadcast_to(g["k_receptor_recycling_per_h"], (n,))])
            release = g["kidney_release_per_h"] if o == "kidneys" else krel
            move(vi(o, "internalised"), vi(o, "interstitial"), release)
            move(vi(o, "internalised"), SINK, kdeg, species=(P0,))  # peptide degraded; label residualises
        # glomerular filtration of the unbound fraction; tubular reabsorption into kidney cells
        filt = g["gfr_l_per_h"] * g["fraction_unbound_plasma"] / ph.v_vasc["kidneys"]
        fre = g["tubular_reabsorption_fraction"]
        ktub = 60.0 / g["tubular_transit_min"]
        move(vi("kidneys", "vascular"), TUBULE, filt)
        move(TUBULE, URINE, ktub * (1.0 - fre))
        move(TUBULE, vi("kidneys", "internalised"), ktub * fre)
        # physical decay of every labelled pool (syringe included) into the 'decayed' state
        lam = np.full(n, self.lam)
        for s in (ART, VEN, SYRINGE, TUBULE, *range(2, URINE), URINE):
            move(s, SINK, lam, species=(H0,))
        # cumulated activity (MBq h) per organ and in blood: d/dt = activity present
        for k, o in enumerate(ORGANS):
            for s in [vi(o, pool) for pool in POOLS] + ([TUBULE] if o == "kidneys" else []):
                rows.append(off + CUM0 + k)
                cols.append(off + H0 + s)
                vals.append(np.ones(n))
        for s in (ART, VEN):
            rows.append(off + CUM0 + len(ORGANS))
            cols.append(off + H0 + s)
            vals.append(np.ones(n))
        r = np.concatenate(rows)
        c = np.concatenate(cols)
        v = np.concatenate(vals)
        return sp.coo_matrix((v, (r, c)), shape=(self.size, self.size))

    # --- receptor-occupancy (bilinear) part -------------------------------------------------
    def _binding_setup(self) -> None:
        ph, n = self.phys, self.n
        organs = RECEPTOR_ORGANS
        self._bi = np.array([pool_index(o, "interstitial") for o in organs])
        self._bb = np.array([pool_index(o, "bound") for o in organs])
        self._br = RIN0 + np.arange(len(organs))
        # kon / V_int per patient and binding organ: shape (n, m)
        self._kv = np.stack([ph.p["k_on_l_per_nmol_h"] * ph.kon_factor(o) / ph.v_int[o] for o in organs], axis=1)
        off = (np.arange(n) * N_STATE)[:, None]
        pi, pb, hi, hb = off + P0 + self._bi, off + P0 + self._bb, off + H0 + self._bi, off + H0 + self._bb
        ri = off + self._br
        # Jacobian entries (row, col) in the order of the values built in jacobian()
        self._jr = np.concatenate([a.ravel() for a in (pi, pi, pi, pb, pb, pb, hi, hi, hi, hb, hb, hb)])
        self._jc = np.concatenate([a.ravel() for a in (pi, pb, ri, pi, pb, ri, hi, pb, ri, hi, pb, ri)])

    def _occupied(self, y2: np.ndarray) -> np.ndarray:
        """Receptors not free: bound (peptide) + internalised (recycling), shape (n, m)."""
        return y2[:, P0 + self._bb] + y2[:, self._br]

    def binding(self, y2: np.ndarray) -> np.ndarray:
        """g(y): occupancy correction, shape (n, N_STATE), for states y2 of shape (n, N_STATE)."""
        out = np.zeros_like(y2)
        pi, hi = y2[:, P0 + self._bi], y2[:, H0 + self._bi]
        occ = self._occupied(y2)
        fp = self._kv * pi * occ
        fh = self._kv * hi * occ
        out[:, P0 + self._bi] = fp
        out[:, P0 + self._bb] = -fp
        out[:, H0 + self._bi] = fh
        out[:, H0 + self._bb] = -fh
        return out

    def rhs(self, y: np.ndarray, source: np.ndarray | None = None) -> np.ndarray:
        f = self.L @ y + self.binding(y.reshape(self.n, N_STATE)).ravel()
        if source is not None:
            f += source
        return f

    def jacobian(self, y: np.ndarray) -> sp.csc_matrix:
        y2 = y.reshape(self.n, N_STATE)
        pi, hi = y2[:, P0 + self._bi], y2[:, H0 + self._bi]
        occ = self._occupied(y2)
        kv = self._kv
        a, b, c = kv * occ, kv * pi, kv * hi
        vals = np.concatenate([x.ravel() for x in (a, b, b, -a, -b, -b, a, c, c, -a, -c, -c)])
        jn = sp.csr_matrix((vals, (self._jr, self._jc)), shape=(self.size, self.size))
        return (self.L + jn).tocsc()

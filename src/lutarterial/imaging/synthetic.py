"""Synthetic patients with known truth: DICOM PET/CT (IV and IAH), SEG, and SPECT time points.

Public API::

    write_synthetic_patient(out_dir, *, seed=0, shape=(48, 64, 64), voxel_mm=(6.0, 6.0, 6.0),
                            blur_fwhm_mm=0.0, noise=0.0, n_lesions=4, iah_delay_h=168.0,
                            spect_times_h=(24.0,), ct_upsample=2, ia_lobe=None) -> SyntheticTruth

Layout written under ``out_dir``::

    names.json                      label/segment number -> {"name", "kind", "lobe"}
    truth.json                      the SyntheticTruth as JSON
    iv/pet/  iv/ct/  iv/seg.dcm     68Ga PET (BQML, START), CT (finer grid), SEG on the CT
    iah/pet/ iah/ct/ iah/seg.dcm    same for the hepatic-artery injection (own frame of reference)
    spect/t024h/nm.dcm              177Lu SPECT (multi-frame NM, counts) per time point
    spect/labels.nii.gz             non-overlapping label map on the SPECT grid (NIfTI, RAS)

Every region is uniform before the optional Gaussian blur (``blur_fwhm_mm``) and
multiplicative Gaussian noise (``noise``, relative SD), so with both off every VOI mean, max
and peak equals the assigned value. Lesions are spheres inside the liver; the liver segment
includes its lesions (as clinical segmentations do); two lobe VOIs support the lobar mode.
The SPECT counts follow the synthetic calibration in ``data/spect_calibrations.csv``
(site SYNTH, camera "Synthetic SPECT", collimator MEGP) with total acquisition time basis.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from lutarterial.errors import InvalidInputError
from lutarterial.imaging.types import Geometry

__all__ = ["SyntheticVoi", "StudyTruth", "SpectTruth", "SyntheticTruth", "write_synthetic_patient", "GA68_HALF_LIFE_S",
           "LU177_HALF_LIFE_S", "SYNTH_CALIBRATION"]

PEAK_MIN_RADIUS_MM = 6.2035
GA68_HALF_LIFE_S = 4062.6  # 67.71 min, NNDC/DDEP
LU177_HALF_LIFE_S = 574300.8  # 6.647 d, NNDC/DDEP
SYNTH_CALIBRATION = {"site": "SYNTH", "camera": "Synthetic SPECT", "collimator": "MEGP", "nuclide": "Lu-177",
                     "cps_per_mbq": 9.5, "time_basis": "total"}


@dataclass(frozen=True)
class SyntheticVoi:
    label: int
    name: str
    kind: str
    lobe: str | None
    suv_iv: float
    suv_iah: float
    teff_h: float  # effective half-life of 177Lu in the region (SPECT time points)
    hu: float


@dataclass(frozen=True)
class StudyTruth:
    route: str  # "iv" or "iah"
    pet_dir: str
    ct_dir: str
    seg_path: str
    injected_bq: float
    injection_time: str
    scan_time: str
    weight_kg: float
    height_m: float
    sex: str
    frame_of_reference_uid: str
    suv_mean: dict[str, float]  # SUVbw of this injection alone, per VOI (plus "healthy liver")
    bqml_mean: dict[str, float]  # Bq/mL in the image (includes residual, if any)
    residual_bqml_mean: dict[str, float]
    volume_ml: dict[str, float]


@dataclass(frozen=True)
class SpectTruth:
    time_h: float
    path: str
    acquisition_time: str
    bqml_mean: dict[str, float]


@dataclass(frozen=True)
class SyntheticTruth:
    out_dir: str
    names_path: str
    vois: tuple[SyntheticVoi, ...]
    iv: StudyTruth
    iah: StudyTruth
    spect: tuple[SpectTruth, ...] = ()
    spect_labels_path: str = ""
    therapy_time: str = ""
    therapy_activity_bq: float = 7.4e9
    calibration: dict[str, Any] = field(default_factory=lambda: dict(SYNTH_CALIBRATION))

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)


def _shapes(g: Geometry, rng: np.random.Generator, n_lesions: int,
            ia_lobe: str | None = None) -> tuple[list[tuple[SyntheticVoi, Any]], float]:
    """Region definitions as (voi, inside(x, y, z) -> bool array) in mm, centred on the FOV."""
    nz, ny, nx = g.shape
    w = min(nx * g.spacing_mm[0], ny * g.spacing_mm[1])
    length = nz * g.spacing_mm[2]
    c = g.index_to_physical(np.array([[(nx - 1) / 2, (ny - 1) / 2, (nz - 1) / 2]]))[0]

    def ell(cx: float, cy: float, cz: float, ax: float, ay: float, az: float):  # type: ignore[no-untyped-def]
        return lambda x, y, z: ((x - cx) / ax) ** 2 + ((y - cy) / ay) ** 2 + ((z - cz) / az) ** 2 <= 1.0

    lv = (c[0] - 0.15 * w, c[1] - 0.02 * w, c[2] + 0.08 * length, 0.22 * w, 0.15 * w, min(0.3 * length, 0.2 * w))
    border = lv[0] + 0.25 * lv[3]  # right/left lobe split (patient right = -x)
    regions: list[tuple[SyntheticVoi, Any]] = []
    liver_in = ell(*lv)
    regions.append((SyntheticVoi(1, "liver", "liver", None, 7.0, 8.0, 60.0, 60.0), liver_in))
    regions.append((SyntheticVoi(2, "liver right lobe", "liver", "right", 7.0, 8.0, 60.0, 60.0),
                    lambda x, y, z: liver_in(x, y, z) & (x < border)))
    regions.append((SyntheticVoi(3, "liver left lobe", "liver", "left", 7.0, 8.0, 60.0, 60.0),
                    lambda x, y, z: liver_in(x, y, z) & (x >= border)))
    regions.append((SyntheticVoi(4, "spleen", "spleen", None, 22.0, 19.0, 70.0, 50.0),
                    ell(c[0] + 0.2 * w, c[1] + 0.06 * w, c[2] + 0.1 * length, 0.06 * w, 0.06 * w, 0.14 * length)))
    regions.append((SyntheticVoi(5, "kidney left", "kidney", None, 16.0, 14.5, 45.0, 35.0),
                    ell(c[0] + 0.12 * w, c[1] + 0.13 * w, c[2] - 0.14 * length, 0.035 * w, 0.045 * w, 0.11 * length)))
    regions.append((SyntheticVoi(6, "kidney right", "kidney", None, 16.0, 14.5, 45.0, 35.0),
                    ell(c[0] - 0.12 * w, c[1] + 0.13 * w, c[2] - 0.16 * length, 0.035 * w, 0.045 * w, 0.11 * length)))
    mr = (c[0], c[1] + 0.19 * w, 0.035 * w)
    regions.append((SyntheticVoi(7, "marrow L1-L4", "marrow", None, 1.8, 1.6, 30.0, 300.0),
                    lambda x, y, z: ((x - mr[0]) ** 2 + (y - mr[1]) ** 2 <= mr[2] ** 2)
                    & (np.abs(z - (c[2] - 0.1 * length)) <= 0.3 * length)))
    regions.append((SyntheticVoi(8, "node 1", "extrahepatic", None, 18.0, 16.0, 80.0, 45.0),
                    ell(c[0] + 0.02 * w, c[1] - 0.02 * w, c[2] - 0.3 * length, 0.04 * w, 0.04 * w, 0.04 * w)))
    placed: list[tuple[float, float, float, float]] = []
    vox = max(g.spacing_mm)
    shrink, tries = 1.0, 0
    while len(placed) < n_lesions:
        tries += 1
        if tries % 2000 == 0:  # crowded: make the remaining lesions smaller
            shrink *= 0.85
        if shrink < 0.3:
            raise InvalidInputError(f"cannot place {n_lesions} lesions in the liver at this size; use fewer")
        r = float(rng.uniform(0.035, 0.05) * w * shrink)
        r = max(r, PEAK_MIN_RADIUS_MM + vox)  # a 1 cm3 peak sphere must fit inside
        p = np.array([rng.uniform(-1, 1) * lv[3], rng.uniform(-1, 1) * lv[4], rng.uniform(-1, 1) * lv[5]])
        mg = r + vox
        if min(lv[3], lv[4], lv[5]) <= mg:
            raise InvalidInputError("the liver is too small for lesions at this voxel size; use a larger grid")
        if (p[0] / (lv[3] - mg)) ** 2 + (p[1] / (lv[4] - mg)) ** 2 + (p[2] / (lv[5] - mg)) ** 2 > 1.0:
            continue
        q = p + np.array(lv[:3])
        if any(np.linalg.norm(q - np.array(o[:3])) < r + o[3] + 1.5 * vox for o in placed):
            continue
        if abs(q[0] - border) < r + 0.6 * vox:  # keep lesions off the lobe border
            continue
        placed.append((float(q[0]), float(q[1]), float(q[2]), r))
    for n, (x0, y0, z0, r) in enumerate(placed, start=1):
        suv_iv = float(rng.uniform(15, 40))
        ratio = float(rng.uniform(1.5, 3.5))
        lobe = "right" if x0 < border else "left"
        if ia_lobe is not None and lobe != ia_lobe:
            ratio = 8.0 / 7.0  # lobe not reached by the arterial injection: like the healthy liver
        regions.append((SyntheticVoi(8 + n, f"lesion {n}", "lesion", lobe, round(suv_iv, 3), round(suv_iv * ratio, 3),
                                     90.0, 50.0), ell(x0, y0, z0, r, r, r)))
    return regions, w


def _grid(g: Geometry) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    nz, ny, nx = g.shape
    k, j, i = np.meshgrid(np.arange(nz), np.arange(ny), np.arange(nx), indexing="ij")
    pts = g.index_to_physical(np.column_stack([i.ravel(), j.ravel(), k.ravel()]))
    return tuple(pts[:, a].reshape(g.shape) for a in range(3))  # type: ignore[return-value]


def _paint(g: Geometry, regions: list[tuple[SyntheticVoi, Any]], body_axes: tuple[float, float],
           value: Any, body_value: float) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Voxel-centre painting; later (smaller) regions overwrite earlier ones; returns masks too."""
    x, y, z = _grid(g)
    c = g.index_to_physical(np.array([[(g.shape[2] - 1) / 2, (g.shape[1] - 1) / 2, 0]]))[0]
    body = ((x - c[0]) / body_axes[0]) ** 2 + ((y - c[1]) / body_axes[1]) ** 2 <= 1.0
    img = np.where(body, body_value, 0.0)
    masks: dict[str, np.ndarray] = {}
    for voi, inside in regions:
        m = inside(x, y, z) & body
        masks[voi.name] = m
        if voi.lobe is not None and voi.kind == "liver":
            continue  # lobes only subdivide the liver
        img = np.where(m, value(voi), img)
    return img, masks


def write_synthetic_patient(
    out_dir: str | Path,
    *,
    seed: int = 0,
    shape: tuple[int, int, int] = (48, 64, 64),
    voxel_mm: tuple[float, float, float] = (6.0, 6.0, 6.0),
    blur_fwhm_mm: float = 0.0,
    noise: float = 0.0,
    n_lesions: int = 4,
    iah_delay_h: float = 168.0,
    spect_times_h: tuple[float, ...] = (24.0,),
    ct_upsample: int = 2,
    weight_kg: float = 75.0,
    height_m: float = 1.75,
    sex: str = "M",
    iv_injected_mbq: float = 150.0,
    iah_injected_mbq: float = 120.0,
    ia_lobe: str | None = None,
    iv_injection_time: datetime | None = None,
    patient_id: str | None = None,
) -> SyntheticTruth:
    """Write a synthetic IV + IAH PET/CT (+SEG) and SPECT patient; return the known truth.

    ``shape`` is (slices, rows, columns) and ``voxel_mm`` (column, row, slice) spacing of PET
    and SPECT; the CT uses ``ct_upsample`` times finer in-plane spacing on the same origin.
    ``ia_lobe`` ("right"/"left", LUTIA-style lobar design): only lesions of that lobe gain from
    the arterial injection; the others change like the healthy liver.
    ``iv_injection_time`` (default 2026-03-02 09:00) dates the whole patient (IAH PET ``iah_delay_h``
    later, 177Lu therapy 2 h after the IAH PET injection); ``patient_id`` (default ``SYNTH-<seed>``)
    is written as PatientID and in PatientName.
    """
    from pydicom.uid import generate_uid
    from scipy.ndimage import gaussian_filter

    from lutarterial.imaging import dicom_write as dw

    if min(shape) < 8:
        raise InvalidInputError("synthetic patient needs at least 8 voxels along each axis")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    nz, ny, nx = shape
    sx, sy, sz = voxel_mm
    origin = (-(nx - 1) / 2 * sx, -(ny - 1) / 2 * sy, -(nz - 1) * sz)
    g = Geometry(tuple(shape), tuple(voxel_mm), origin, (1, 0, 0, 0, 1, 0, 0, 0, 1))  # type: ignore[arg-type]
    if ia_lobe not in (None, "right", "left"):
        raise InvalidInputError("ia_lobe must be 'right', 'left' or None")
    regions, w = _shapes(g, rng, n_lesions, ia_lobe)
    body_axes = (0.42 * w, 0.30 * w)
    gct = Geometry((nz, ny * ct_upsample, nx * ct_upsample), (sx / ct_upsample, sy / ct_upsample, sz), origin,
                   g.direction)
    vois = tuple(v for v, _ in regions)
    names = {str(v.label): {"name": v.name, "kind": v.kind, **({"lobe": v.lobe} if v.lobe else {})} for v in vois}
    names_path = out / "names.json"
    names_path.write_text(json.dumps(names, indent=2))
    vml = g.voxel_volume_ml

    t_iv_inj = iv_injection_time or datetime(2026, 3, 2, 9, 0, 0)
    pid = patient_id or "SYNTH-%03d" % seed
    studies: dict[str, StudyTruth] = {}
    iv_img_at_scan: np.ndarray | None = None
    iv_scan = t_iv_inj + timedelta(minutes=60)
    sigma_vox = [blur_fwhm_mm / (2 * math.sqrt(2 * math.log(2))) / s for s in (sz, sy, sx)]
    for route, inj_t, mbq in (("iv", t_iv_inj, iv_injected_mbq),
                              ("iah", t_iv_inj + timedelta(hours=iah_delay_h), iah_injected_mbq)):
        scan_t = inj_t + timedelta(minutes=60)
        decayed = mbq * 1e6 * 2 ** (-3600 / GA68_HALF_LIFE_S)
        to_bqml = decayed / (weight_kg * 1000)
        suv, masks = _paint(g, regions, body_axes, (lambda v, r=route: v.suv_iv if r == "iv" else v.suv_iah), 0.8)
        act = suv * to_bqml
        residual = np.zeros_like(act)
        if route == "iah" and iv_img_at_scan is not None:
            dt = (scan_t - iv_scan).total_seconds()
            if dt < 10 * GA68_HALF_LIFE_S:
                residual = iv_img_at_scan * 2 ** (-dt / GA68_HALF_LIFE_S)
        act_total = act + residual
        img = act_total
        if blur_fwhm_mm > 0:
            img = gaussian_filter(img, sigma_vox, mode="constant")
        if noise > 0:
            img = img * (1 + noise * rng.standard_normal(img.shape))
            img = np.clip(img, 0, None)
        if route == "iv":
            iv_img_at_scan = act_total
        for_uid = generate_uid()
        p = dw.PatientInfo(pid, generate_uid(), for_uid, inj_t, weight_kg, height_m, sex)
        pet = dw.pet_datasets(img.astype(np.float32), g, p, series_time=scan_t, injection_time=inj_t,
                              injected_bq=mbq * 1e6, half_life_s=GA68_HALF_LIFE_S)
        pet_dir = dw.save_series(pet, out / route / "pet")
        hu, ct_masks = _paint(gct, regions, body_axes, lambda v: v.hu, 40.0)
        hu = np.where(hu == 0, -1000.0, hu)
        ct = dw.ct_datasets(hu, gct, p, series_time=scan_t - timedelta(minutes=2))
        ct_dir = dw.save_series(ct, out / route / "ct")
        seg_path = dw.write_seg(out / route / "seg.dcm", ct, [(v.name, v.kind, ct_masks[v.name]) for v in vois])
        lesion_any = np.zeros(g.shape, dtype=bool)
        for v in vois:
            if v.kind == "lesion":
                lesion_any |= masks[v.name]
        mm = dict(masks)
        mm["healthy liver"] = masks["liver"] & ~lesion_any
        for v in vois:
            if v.kind == "liver" and v.lobe:
                mm[f"healthy liver ({v.lobe})"] = masks[v.name] & ~lesion_any
        studies[route] = StudyTruth(
            route=route, pet_dir=str(pet_dir), ct_dir=str(ct_dir), seg_path=str(seg_path), injected_bq=mbq * 1e6,
            injection_time=inj_t.isoformat(), scan_time=scan_t.isoformat(), weight_kg=weight_kg, height_m=height_m,
            sex=sex, frame_of_reference_uid=for_uid,
            suv_mean={k: float(suv[m].mean()) for k, m in mm.items() if m.any()},
            bqml_mean={k: float(act_total[m].mean()) for k, m in mm.items() if m.any()},
            residual_bqml_mean={k: float(residual[m].mean()) for k, m in mm.items() if m.any()},
            volume_ml={k: float(m.sum() * vml) for k, m in mm.items()},
        )

    # SPECT time points after a 7.4 GBq 177Lu therapy given 2 h after the IAH PET injection.
    therapy_t = datetime.fromisoformat(studies["iah"].injection_time) + timedelta(hours=2)
    cal = SYNTH_CALIBRATION
    spect: list[SpectTruth] = []
    labels = np.zeros(g.shape, dtype=np.int16)
    _, all_masks = _paint(g, regions, body_axes, lambda _v: 1.0, 0.0)
    for v in vois:
        if not (v.kind == "liver" and v.lobe is not None):
            labels[all_masks[v.name]] = v.label  # lesions come after the liver, so they win
    spect_for = generate_uid()
    for th in spect_times_h:
        acq = therapy_t + timedelta(hours=th)
        conc0 = 7.4e9 / (weight_kg * 1000)  # Bq/mL per "SUV unit" at therapy time

        def val(v: SyntheticVoi, th: float = th) -> float:
            return v.suv_iah * conc0 * math.exp(-math.log(2) * th / v.teff_h)

        conc, masks = _paint(g, regions, body_axes, val, 0.8 * conc0 * math.exp(-math.log(2) * th / 15.0))
        img = conc
        if blur_fwhm_mm > 0:
            img = gaussian_filter(img, sigma_vox, mode="constant")
        if noise > 0:
            img = np.clip(img * (1 + noise * rng.standard_normal(img.shape)), 0, None)
        projections, frame_s = 120, 20.0
        counts = img * vml * 1e-6 * cal["cps_per_mbq"] * projections * frame_s
        p = dw.PatientInfo(pid, generate_uid(), spect_for, therapy_t, weight_kg, height_m, sex)
        nm = dw.nm_dataset(counts, g, p, acq_time=acq, frame_duration_s=frame_s, projections=projections,
                           collimator=cal["collimator"], model=cal["camera"], injection_time=therapy_t,
                           injected_bq=7.4e9)
        nm.InstitutionName = cal["site"]
        d = out / "spect" / f"t{int(round(th)):03d}h"
        d.mkdir(parents=True, exist_ok=True)
        nm.save_as(d / "nm.dcm", enforce_file_format=True)
        lesion_any = np.zeros(g.shape, dtype=bool)
        for v in vois:
            if v.kind == "lesion":
                lesion_any |= masks[v.name]
        masks["healthy liver"] = masks["liver"] & ~lesion_any
        spect.append(SpectTruth(th, str(d / "nm.dcm"), acq.isoformat(),
                                {k: float(conc[m].mean()) for k, m in masks.items() if m.any()}))
    from lutarterial.imaging.dicom_write import write_nifti_labels

    lab_path = write_nifti_labels(out / "spect" / "labels.nii.gz", labels, g)
    (out / "spect" / "names.json").write_text(json.dumps(
        {str(v.label): names[str(v.label)] for v in vois if v.lobe is None or v.kind != "liver"}, indent=2))
    truth = SyntheticTruth(str(out), str(names_path), vois, studies["iv"], studies["iah"], tuple(spect),
                           str(lab_path), therapy_t.isoformat())
    (out / "truth.json").write_text(truth.to_json())
    return truth

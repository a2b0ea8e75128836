"""Per-VOI metrics of one study: volume, mean, max, peak, SD, total activity, %IA, SUVs, TNR.

Pure computation on arrays and header values. Activity concentration (Bq/mL) is the primary
quantity; SUVbw, SUL and SUVbsa are the same numbers times the factors from :mod:`.suv`.

* Healthy liver = union of the ``liver`` VOIs minus every lesion voxel (hepatic and
  extrahepatic; derived VOI "healthy liver"; with lobe-tagged liver VOIs also
  "healthy liver (<lobe>)").
* Background VOIs (spleen, marrow, kidney, healthy liver) are measured on the VOI minus every
  lesion voxel, for every metric (volume, mean, min, max, SD, peak, total, %IA), with a note
  when a drawn VOI lost voxels that way; a drawn ``liver`` VOI is the whole organ, its lesions
  included (healthy liver is its background). See docs/imaging.md, "Background VOIs".
* TNR (lesions) = lesion mean / healthy-liver mean; TSR = lesion mean / spleen mean (same study).
* Total activity = sum over voxels of Bq/mL x voxel volume, at the image's reference time
  (scan start for DecayCorrection START); %IA = total / injected activity decayed to that time x 100.

Public API::

    quantify(image, labels, *, peak=True, require_suv=True, recovery=None, allow_nonfinite=False) -> StudyMetrics
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from lutarterial.errors import InvalidInputError, LutarterialError
from lutarterial.imaging.peak import peak_mean, peak_mean_within, sphere_kernel
from lutarterial.imaging.suv import SuvFactors, stored_suv_to_suvbw, suv_factors
from lutarterial.imaging.types import Image, LabelMap, Quantity, VoiKind, VoiMask, VoiSpec, crop_mask
from lutarterial.plausibility import check_quantity

__all__ = ["VoiMetrics", "StudyMetrics", "quantify", "image_suv_factors", "add_ratios", "measured_vois",
           "HEALTHY_LIVER"]

HEALTHY_LIVER = "healthy liver"


@dataclass(frozen=True)
class VoiMetrics:
    name: str
    kind: VoiKind
    lobe: str | None
    derived: bool
    n_voxels: int
    volume_ml: float
    mean_bqml: float | None
    max_bqml: float | None
    peak_bqml: float | None
    sd_bqml: float | None
    total_bq: float | None
    percent_ia: float | None
    suv_mean: float | None
    suv_max: float | None
    suv_peak: float | None
    sul_mean: float | None = None
    sul_peak: float | None = None
    suvbsa_mean: float | None = None
    tnr: float | None = None  # lesion mean / healthy liver mean
    tsr: float | None = None  # lesion mean / spleen mean
    recovery_coefficient: float | None = None
    peak_centre_ijk: tuple[int, int, int] | None = None
    # issue 10: with partial-volume correction, the values before it (the corrected ones above
    # are all divided by the same recovery coefficient, so min <= mean <= max still holds)
    mean_bqml_uncorrected: float | None = None
    max_bqml_uncorrected: float | None = None
    peak_bqml_uncorrected: float | None = None
    suv_mean_uncorrected: float | None = None
    suv_max_uncorrected: float | None = None
    suv_peak_uncorrected: float | None = None
    #: how SUVpeak was sampled: "ibsi" (sphere may extend outside the VOI), "within" (background
    #: VOI: whole sphere inside the VOI minus lesions), "within-partial" (no whole sphere fits)
    peak_method: str | None = None
    min_bqml: float | None = None
    suv_min: float | None = None

    def as_dict(self) -> dict[str, object]:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d["kind"] = self.kind.value
        return d


@dataclass(frozen=True)
class StudyMetrics:
    vois: tuple[VoiMetrics, ...]
    quantity: Quantity
    suv: SuvFactors | None
    injected_activity_bq: float | None
    reference_time: str | None
    notes: tuple[str, ...] = field(default_factory=tuple)

    def by_name(self) -> dict[str, VoiMetrics]:
        return {v.name: v for v in self.vois}


def image_suv_factors(image: Image) -> SuvFactors:
    """SUV factors from the image's header timing (raises naming the missing tag).

    Philips CNTS images carrying both (7053,1009) and (7053,1000): SUVbw uses the vendor SUV
    scale factor, as the QIBA pseudo-code prescribes, unless the user overrode header values.
    """
    vendor = image.meta.get("philips_suv_scale")
    acf = image.meta.get("philips_activity_scale")
    if vendor and acf and image.quantity is Quantity.BQML and not image.meta.get("suv_overrides"):
        bw = float(vendor) / float(acf)
        try:
            return replace(_header_factors(image), bw=bw)
        except LutarterialError:
            return SuvFactors(bw=bw, lbm=None, bsa=None, decayed_dose_bq=None, decay_time_s=None)
    return _header_factors(image)


def _header_factors(image: Image) -> SuvFactors:
    t = image.timing
    if t is None:
        raise InvalidInputError("image has no PET timing (weight, injected activity, injection time)")
    return suv_factors(
        weight_kg=t.weight_kg, injected_activity_bq=t.injected_activity_bq, injection_time=t.injection_time,
        reference_time=t.scan_time, decay_correction=t.decay_correction, half_life_s=t.half_life_s,
        height_m=t.height_m, sex=t.sex,
    )


def _derived_vois(labels: LabelMap) -> list[VoiMask]:
    shape = labels.geometry.shape
    livers = [v for v in labels.vois if v.spec.kind is VoiKind.LIVER]
    lesions = [v for v in labels.vois if v.spec.kind in _LESION_KINDS]
    names = {v.spec.name for v in labels.vois}
    if not livers or HEALTHY_LIVER in names:
        return []
    les = np.zeros(shape, dtype=bool)
    for v in lesions:
        les[v.bbox] |= v.mask
    out = []
    whole = np.zeros(shape, dtype=bool)
    for v in livers:
        whole[v.bbox] |= v.mask
    groups: list[tuple[str, str | None, np.ndarray]] = [(HEALTHY_LIVER, None, whole)]
    for lobe in sorted({v.spec.lobe for v in livers if v.spec.lobe}):
        m = np.zeros(shape, dtype=bool)
        for v in livers:
            if v.spec.lobe == lobe:
                m[v.bbox] |= v.mask
        groups.append((f"{HEALTHY_LIVER} ({lobe})", lobe, m))
    for name, lobe, m in groups:
        h = m & ~les
        if not h.any():
            raise InvalidInputError(f"{name} is empty: the lesion VOIs cover the whole liver VOI")
        out.append(crop_mask(VoiSpec(-1, name, VoiKind.LIVER, lobe), h))
    return out


def quantify(
    image: Image,
    labels: LabelMap,
    *,
    peak: bool = True,
    require_suv: bool = True,
    recovery: Callable[[float], float] | None = None,
    allow_nonfinite: bool = False,
) -> StudyMetrics:
    """Metrics for every VOI (and derived healthy liver) of one study.

    ``recovery`` maps a lesion volume (mL) to a recovery coefficient; every intensity metric of a
    lesion (mean, max, peak, SD, total) is divided by it (partial-volume correction, SPECT), and
    the uncorrected values are reported alongside (``*_uncorrected``). Background VOIs (spleen,
    marrow, kidney, healthy liver) are the VOI minus every lesion voxel for every metric, SUVpeak
    included (spheres inside that region); a drawn liver VOI is the whole organ (lesions included).

    NaN or infinite voxels inside a VOI (or within its SUVpeak sphere) are an
    :class:`InvalidInputError` naming the VOI and the count; with ``allow_nonfinite`` they are
    excluded from mean/max/SD with a note (total activity then assumes they had the VOI's mean)
    and SUVpeak is omitted where its sphere touches one.
    """
    if not labels.geometry.same_grid(image.geometry):
        raise InvalidInputError("label map is not on the image grid; read it with read_labels(path, image)")
    if labels.frame_of_reference_uid and image.frame_of_reference_uid and \
            labels.frame_of_reference_uid != image.frame_of_reference_uid:
        raise InvalidInputError("labels and image have different frames of reference")
    notes: list[str] = []
    h = image.timing.height_m if image.timing is not None else None
    if h is not None and not (0.3 < h < 2.8):
        unit = " (centimetres written instead of metres?)" if 30 <= h <= 280 else ""
        notes.append(f"PatientSize (0010,1020) {h:g} is not a height in metres{unit}; SUL and SUVbsa omitted "
                     "(supply --height-m)")
    notes.extend(str(n) for n in image.meta.get("header_notes", ()))
    factors: SuvFactors | None = None
    q = image.quantity
    arr = image.array
    if q is Quantity.SUVBSA:
        # SUVbsa from a NIfTI sidecar: convert to SUVbw with the sidecar's weight and height.
        t = image.timing
        if t is None or not t.weight_kg or not t.height_m:
            raise InvalidInputError("image is stored as SUVbsa (cm2/mL); converting it to SUVbw needs the "
                                    "weight and height (supply --weight-kg and --height-m)")
        k, conv_notes = stored_suv_to_suvbw("CM2ML", "BSA", t.weight_kg, t.height_m, t.sex)
        notes.extend(conv_notes)
        arr = (arr.astype(np.float64) * k).astype(np.float32)
        q = Quantity.SUVBW
    if q is Quantity.BQML:
        if image.timing is not None and require_suv:
            factors = image_suv_factors(image)
        elif image.timing is not None and _timing_complete(image):
            try:
                factors = image_suv_factors(image)
            except LutarterialError as exc:  # optional for SPECT: report, do not fail
                notes.append(f"SUV and %IA not computed: {exc}")
        elif require_suv:
            raise InvalidInputError("SUV requested but the image carries no PET header timing")
        else:
            t = image.timing
            missing = [what for what, ok in (
                ("body weight (--weight-kg)", t and t.weight_kg),
                ("injected activity (--injected-mbq)", t and t.injected_activity_bq),
                ("injection date and time (--injection-time)", t and t.injection_time),
                ("half-life (--half-life-s)", t and t.half_life_s)) if not ok]
            notes.append("SUV and %IA not computed: missing " + ", ".join(missing))
        to_bqml, to_suv = 1.0, (factors.bw if factors else None)
    elif q is Quantity.SUVBW:
        to_suv = 1.0
        to_bqml = None
        if image.timing is not None and _timing_complete(image):
            factors = image_suv_factors(image)
            to_bqml = 1.0 / factors.bw
        else:
            notes.append("image is stored in SUVbw; Bq/mL, total activity and %IA unavailable")
    else:
        hint = ("calibrate SPECT counts first (imaging.spect.calibrate_spect)" if q is Quantity.CNTS
                else "give the PET or SPECT series, not the CT")
        raise InvalidInputError(f"image holds {q.value}, not activity concentration: {hint}")
    if factors is not None:
        notes.extend(n for n in factors.notes if n not in notes)
        _check_factors(factors)
    kernel = sphere_kernel(image.geometry.spacing_mm) if peak else None
    vml = image.geometry.voxel_volume_ml
    raw: list[VoiMetrics] = []
    any_nonfinite = not bool(np.isfinite(arr).all())
    lesion_vois, lesion_all = _lesion_union(labels.vois, arr.shape)
    for v in list(labels.vois) + _derived_vois(labels):
        if v.n_voxels == 0:
            raise InvalidInputError(f"VOI {v.spec.name!r} is empty on the image grid")
        background = _is_background(v)
        if background:
            v = _without_lesions(v, lesion_all, lesion_vois, vml, notes)
        n = v.n_voxels
        vals = arr[v.bbox][v.mask].astype(np.float64)
        if any_nonfinite:
            vals = _finite_values(v.spec.name, vals, allow_nonfinite, notes)
        used = vals.size
        mean, vmax, sd = float(vals.mean()), float(vals.max()), float(vals.std(ddof=1)) if used > 1 else 0.0
        pk, centre, method = None, None, None
        if kernel is not None:
            if background:
                # issue 10: a reference region's peak never samples the lesions it excludes
                pk, centre, whole = peak_mean_within(arr, v.bbox, v.mask, kernel)
                method = "within" if whole else "within-partial"
                if not whole:
                    notes.append(f"VOI {v.spec.name!r}: no 1 mL sphere fits inside it (minus lesions); SUVpeak "
                                 "is the highest mean over the part of a sphere inside it")
            else:
                pk, centre = peak_mean(arr, v.bbox, v.mask, kernel)
                method = "ibsi"
        if pk is not None and not np.isfinite(pk):
            if not allow_nonfinite:
                raise InvalidInputError(
                    f"VOI {v.spec.name!r}: the SUVpeak sphere around it contains NaN or infinite voxels; "
                    "fix the image, or rerun with --no-peak or --allow-nonfinite")
            notes.append(f"VOI {v.spec.name!r}: SUVpeak omitted (its sphere touches NaN or infinite voxels)")
            pk, centre = None, None
        rc = None
        unc: tuple[float, float, float | None] | None = None
        if recovery is not None and v.spec.kind in (VoiKind.LESION, VoiKind.EXTRAHEPATIC):
            rc = float(recovery(n * vml))
            if not (np.isfinite(rc) and rc > 0):
                raise InvalidInputError(f"recovery coefficient {rc!r} for VOI {v.spec.name!r} is not a positive number")
            # issue 10: one coefficient for every intensity metric (mean, max, peak, SD, total),
            # so the corrected row stays consistent; the uncorrected values are kept alongside.
            unc = (mean, vmax, pk)
            mean, vmax, sd = mean / rc, vmax / rc, sd / rc
            if pk is not None:
                pk /= rc
        m_ = _assemble(v, n, vml, mean, vmax, pk, sd, to_bqml, to_suv, factors, rc, centre)
        if unc is not None:
            m_ = _with_uncorrected(m_, unc, to_bqml, to_suv)
        vmin = float(vals.min()) / (rc or 1.0)
        raw.append(replace(m_, peak_method=method, min_bqml=None if to_bqml is None else vmin * to_bqml,
                           suv_min=None if to_suv is None else vmin * to_suv))
    out = add_ratios(raw)
    return StudyMetrics(
        vois=tuple(out), quantity=q, suv=factors,
        injected_activity_bq=image.timing.injected_activity_bq if image.timing else None,
        reference_time=image.timing.scan_time.isoformat() if image.timing and image.timing.scan_time else None,
        notes=tuple(notes),
    )


def _finite_values(name: str, vals: np.ndarray, allow: bool, notes: list[str]) -> np.ndarray:
    """The finite voxel values of VOI ``name``; error (or note, with ``allow``) naming the count."""
    ok = np.isfinite(vals)
    bad = int(vals.size - int(ok.sum()))
    if not bad:
        return vals
    n_nan = int(np.isnan(vals).sum())
    what = f"{bad} of {vals.size} voxels are not finite ({n_nan} NaN, {bad - n_nan} infinite)"
    if not allow or bad == vals.size:
        hint = ("the VOI has no finite voxel" if bad == vals.size
                else "fix the image, or rerun with --allow-nonfinite to exclude them")
        raise InvalidInputError(f"VOI {name!r}: {what}; {hint}")
    notes.append(f"VOI {name!r}: {what}; excluded from mean, max and SD (--allow-nonfinite); "
                 "total activity assumes they had the VOI mean")
    return vals[ok]


def _check_factors(f: SuvFactors) -> None:
    """SUV factors must be finite and positive: an infinite dose or weight gave SUV 0.0 everywhere."""
    for name, x in (("SUVbw factor", f.bw), ("SUL factor", f.lbm), ("SUVbsa factor", f.bsa)):
        if x is not None and not (np.isfinite(x) and x > 0):
            raise InvalidInputError(f"{name} is {x!r}: check the body weight, height and injected activity")
    if f.decayed_dose_bq is not None:
        check_quantity("activity", f.decayed_dose_bq, "Bq", name="decay-corrected injected activity")
        if f.decayed_dose_bq <= 0:
            raise InvalidInputError("decay-corrected injected activity is 0: check the injected activity")


_LESION_KINDS = (VoiKind.LESION, VoiKind.EXTRAHEPATIC)
#: Organ kinds measured as reference (background) regions; see :func:`_is_background`.
_BACKGROUND = (VoiKind.SPLEEN, VoiKind.MARROW, VoiKind.KIDNEY)


def _is_background(v: VoiMask) -> bool:
    """Spleen, marrow, kidney and healthy liver (derived, or drawn under that name).

    A drawn ``liver`` VOI is not: it is the whole organ and contains the hepatic lesions by
    definition (its total activity is the liver's); its background is the healthy liver.
    """
    if v.spec.kind in _BACKGROUND:
        return True
    return v.spec.kind is VoiKind.LIVER and (v.spec.label < 0 or v.spec.name.strip().lower().startswith(HEALTHY_LIVER))


#: the metrics named by the note of :func:`_without_lesions` (imaging; dosimetry names its own)
IMAGING_METRICS = "volume, mean, min, max, SD, peak, total, %IA"


def measured_vois(vois: Sequence[VoiMask], shape: tuple[int, ...], voxel_volume_ml: float,
                  notes: list[str], *, metrics: str = IMAGING_METRICS) -> tuple[VoiMask, ...]:
    """The drawn VOIs as every metric measures them (issue 10): background VOIs (spleen, marrow,
    kidney, a drawn healthy liver) minus every ``lesion``/``extrahepatic`` voxel, others whole.

    The one rule for both :func:`quantify` and the dosimetry statistics
    (:func:`lutarterial.dosimetry.workflow.voxel_dosimetry`), so an organ at risk is the same set
    of voxels in its SUVs and in its dose. A note naming the voxels and lesion VOIs removed is
    appended to ``notes`` (``metrics`` says which numbers they left); a background VOI lying
    entirely inside lesions is an :class:`InvalidInputError`. See docs/imaging.md, "Background VOIs".
    """
    lesion_vois, lesion_all = _lesion_union(vois, shape)
    return tuple(_without_lesions(v, lesion_all, lesion_vois, voxel_volume_ml, notes, metrics)
                 if _is_background(v) else v for v in vois)


def _lesion_union(vois: Sequence[VoiMask], shape: tuple[int, ...]) -> tuple[list[VoiMask], np.ndarray]:
    """The lesion and extrahepatic VOIs, and the union of their voxels on the full grid."""
    lesion_vois = [lv for lv in vois if lv.spec.kind in _LESION_KINDS]
    lesion_all = np.zeros(shape, dtype=bool)
    for lv in lesion_vois:
        lesion_all[lv.bbox] |= lv.mask
    return lesion_vois, lesion_all


def _without_lesions(v: VoiMask, lesion_all: np.ndarray, lesion_vois: list[VoiMask], vml: float,
                     notes: list[str], metrics: str = IMAGING_METRICS) -> VoiMask:
    """Background VOI ``v`` minus every lesion voxel (issue 10), with a note naming what was removed.

    Every metric is then taken on what is left, so no lesion voxel enters a reference value. The
    derived healthy liver has no lesion voxel to lose (it is built without them) and gets no note.
    """
    keep = v.mask & ~lesion_all[v.bbox]
    lost = v.n_voxels - int(np.count_nonzero(keep))
    if not lost:
        return v
    overlap = [lv.spec.name for lv in lesion_vois if _overlaps(v, lv)]
    if not keep.any():
        raise InvalidInputError(f"VOI {v.spec.name!r} lies entirely inside lesion VOIs ({', '.join(overlap)}): "
                                "nothing of the organ is left to measure; check the label map")
    notes.append(f"VOI {v.spec.name!r}: {lost} of {v.n_voxels} voxels ({lost * vml:.3f} mL) shared with lesion "
                 f"VOIs ({', '.join(overlap)}) excluded from every metric ({metrics})")
    return VoiMask(v.spec, v.bbox, keep)


def _overlaps(a: VoiMask, b: VoiMask) -> bool:
    """Whether two cropped masks share a voxel (compared on the intersection of their boxes)."""
    inter = [slice(max(x.start, y.start), min(x.stop, y.stop)) for x, y in zip(a.bbox, b.bbox, strict=True)]
    if any(s.start >= s.stop for s in inter):
        return False

    def part(m: VoiMask) -> np.ndarray:
        return m.mask[tuple(slice(s.start - o.start, s.stop - o.start) for s, o in zip(inter, m.bbox, strict=True))]

    return bool((part(a) & part(b)).any())


def _with_uncorrected(m: VoiMetrics, unc: tuple[float, float, float | None], to_bqml: float | None,
                      to_suv: float | None) -> VoiMetrics:
    def s(x: float | None, k: float | None) -> float | None:
        return None if x is None or k is None else x * k

    mean, vmax, pk = unc
    return replace(m, mean_bqml_uncorrected=s(mean, to_bqml), max_bqml_uncorrected=s(vmax, to_bqml),
                   peak_bqml_uncorrected=s(pk, to_bqml), suv_mean_uncorrected=s(mean, to_suv),
                   suv_max_uncorrected=s(vmax, to_suv), suv_peak_uncorrected=s(pk, to_suv))


def _timing_complete(image: Image) -> bool:
    t = image.timing
    return bool(t and t.weight_kg and t.injected_activity_bq and
                (t.decay_correction == "ADMIN" or (t.injection_time and t.scan_time and t.half_life_s)))


def _assemble(v: VoiMask, n: int, vml: float, mean: float, vmax: float, pk: float | None, sd: float,
              to_bqml: float | None, to_suv: float | None, f: SuvFactors | None, rc: float | None,
              centre: tuple[int, int, int] | None) -> VoiMetrics:
    def s(x: float | None, k: float | None) -> float | None:
        return None if x is None or k is None else x * k

    mean_b, max_b, pk_b, sd_b = s(mean, to_bqml), s(vmax, to_bqml), s(pk, to_bqml), s(sd, to_bqml)
    total = mean_b * n * vml if mean_b is not None else None
    pia = total / f.decayed_dose_bq * 100.0 if (total is not None and f is not None and f.decayed_dose_bq) else None
    sul_mean = sul_peak = bsa_mean = None
    if f is not None and mean_b is not None:
        if f.lbm is not None:
            sul_mean, sul_peak = mean_b * f.lbm, s(pk_b, f.lbm)
        if f.bsa is not None:
            bsa_mean = mean_b * f.bsa
    return VoiMetrics(
        name=v.spec.name, kind=v.spec.kind, lobe=v.spec.lobe, derived=v.spec.label < 0, n_voxels=n,
        volume_ml=n * vml, mean_bqml=mean_b, max_bqml=max_b, peak_bqml=pk_b, sd_bqml=sd_b, total_bq=total,
        percent_ia=pia, suv_mean=s(mean, to_suv), suv_max=s(vmax, to_suv), suv_peak=s(pk, to_suv),
        sul_mean=sul_mean, sul_peak=sul_peak, suvbsa_mean=bsa_mean, recovery_coefficient=rc,
        peak_centre_ijk=centre,
    )


def _level(m: VoiMetrics) -> float | None:
    return m.suv_mean if m.suv_mean is not None else m.mean_bqml


def add_ratios(vois: list[VoiMetrics] | tuple[VoiMetrics, ...]) -> list[VoiMetrics]:
    """Set TNR (vs healthy liver) and TSR (vs volume-weighted spleen mean) on lesion VOIs."""
    by = {m.name: m for m in vois}
    hl = by.get(HEALTHY_LIVER)
    ref = _level(hl) if hl else None
    spl = [(_level(m), m.n_voxels) for m in vois if m.kind is VoiKind.SPLEEN and not m.derived]
    spl = [(a, n) for a, n in spl if a is not None]
    spleen = sum(a * n for a, n in spl) / sum(n for _, n in spl) if spl else None
    out = []
    for m in vois:
        if m.kind in (VoiKind.LESION, VoiKind.EXTRAHEPATIC):
            val = _level(m)
            m = replace(m, tnr=(val / ref) if (val is not None and ref) else None,
                        tsr=(val / spleen) if (val is not None and spleen) else None)
        out.append(m)
    return out

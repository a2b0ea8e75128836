"""Standardised uptake values: pure functions of header values (no DICOM reading here).

Follows the vendor-neutral pseudo-code of the QIBA FDG-PET/CT profile / UW PET QIBA project
("Vendor-neutral pseudo-code for SUV calculation", Kinahan et al., QIBA wiki, 2012-2016):

* Units BQML: SUVbw = pixel (Bq/mL) x weight (g) / decayed dose (Bq).
* DecayCorrection START: images are decay-corrected to the scan start; the injected dose is
  decayed from injection to the scan start. The scan start is the Series Date/Time unless the
  series time is *after* the earliest Acquisition Date/Time (post-processed series, typical of
  GE), in which case the GE private "scan datetime" (0009,100D) is used when present, else the
  earliest acquisition datetime.
* DecayCorrection ADMIN: images are decay-corrected to administration; no decay of the dose.
* DecayCorrection NONE: each frame holds activity at its own acquisition time; the dose is
  decayed to each frame (averaged over the frame duration when known) — handled by
  :func:`frame_decay_factors`.
* Units CNTS (Philips): multiply by private (7053,1000) "SUV scale factor" for SUVbw or by
  (7053,1009) "activity concentration scale factor" to obtain Bq/mL.
* Units GML: already SUVbw.

SUL uses lean body mass by Janmahasatian S et al., Clin Pharmacokinet 2005;44:1051-65:
LBM = 9270 W / (6680 + 216 BMI) (male), 9270 W / (8780 + 244 BMI) (female).
SUVbsa uses body-surface area by Du Bois D & Du Bois EF, Arch Intern Med 1916;17:863-71:
BSA (m^2) = 0.007184 W^0.425 H(cm)^0.725; SUVbsa is in cm^2/mL (BSA in cm^2 / dose in Bq).

Stored SUV variants (Units GML with SUVType (0054,1006), Units CM2ML) follow the IBSI-SUV
manual (Vacha M et al., "Comprehensive Manual for SUV Computation and Digital Reference Objects
for its Verification", oncoray/suv_computation, CC BY 4.0; see docs/imaging.md for every choice):

* LBM (James 1976, DICOM "LBM"): 1.10 W - 120 (W/H)^2 (male), 1.07 W - 148 (W/H)^2 (female);
  LBMJAMES128: the same with 128 for males (W kg, H cm);
* LBMJANMA: Janmahasatian 2005 (above); IBW: 48.0 + 1.06 (H - 152) (male),
  45.5 + 0.91 (H - 152) (female) kg, H in cm;
* PatientSex O: the mean of the male and female normalisers (the manual's proposal), with a note;
* a stored SUV of type X is SUVbw x mass_X / W, so SUVbw = stored x W / mass_X (no dose needed).

Header magnitudes: RadionuclideTotalDose below 10^4 is read as MBq (the manual's survey shows two
clusters, ~4x10^2 and ~4x10^8), PatientWeight above 1000 as grams; both add a note.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from lutarterial.errors import DicomConformanceError, InvalidInputError

__all__ = [
    "SuvFactors",
    "combine_date_time",
    "injection_datetime",
    "scan_start_datetime_qiba",
    "decayed_activity_bq",
    "frame_decay_factors",
    "lbm_janmahasatian2005_kg",
    "bsa_dubois1916_m2",
    "lbm_james1976_kg",
    "ibw_kg",
    "suv_normaliser",
    "stored_suv_to_suvbw",
    "dose_bq_from_header",
    "weight_kg_from_header",
    "SUV_TYPES",
    "suv_factors",
]

SUV_TYPES = ("BW", "BSA", "LBM", "LBMJAMES128", "LBMJANMA", "IBW")
MBQ_BELOW = 1e4  # RadionuclideTotalDose < 10^4 is MBq (10 GBq at most; Bq values are > 10^6)
GRAMS_ABOVE = 1000.0  # PatientWeight > 1000 is grams


@dataclass(frozen=True)
class SuvFactors:
    """Multiply Bq/mL by these to obtain SUVbw (g/mL), SUL (g/mL) and SUVbsa (cm^2/mL)."""

    bw: float
    lbm: float | None
    bsa: float | None
    decayed_dose_bq: float | None  # None when only a vendor SUV scale factor is known
    decay_time_s: float | None
    dose_unit_assumed: str | None = None  # "Bq" (DICOM) or "MBq" (recognised by magnitude)
    weight_unit_assumed: str | None = None  # "kg" (DICOM) or "g" (recognised by magnitude)
    notes: tuple[str, ...] = ()


def combine_date_time(d: date, t: time) -> datetime:
    return datetime.combine(d, t)


def injection_datetime(
    start_datetime: datetime | None,
    start_time: time | None,
    series_date: date | None,
    scan_datetime: datetime | None,
) -> datetime:
    """Injection datetime: RadiopharmaceuticalStartDateTime if present, else date + time.

    With only a time, the series date is assumed; if that puts the injection after the scan
    (the scan started after midnight, injection before), the injection is moved one day back.
    """
    if start_datetime is not None:
        return start_datetime
    if start_time is None:
        raise DicomConformanceError(
            "injection time missing: neither RadiopharmaceuticalStartDateTime (0018,1078) nor "
            "RadiopharmaceuticalStartTime (0018,1072) is present; supply it (e.g. --injection-time)"
        )
    if series_date is None:
        raise DicomConformanceError("SeriesDate (0008,0021) missing; cannot date the injection time")
    inj = datetime.combine(series_date, start_time)
    if scan_datetime is not None and inj > scan_datetime:
        inj -= timedelta(days=1)
    return inj


def scan_start_datetime_qiba(
    series_datetime: datetime | None,
    earliest_acquisition_datetime: datetime | None,
    ge_private_scan_datetime: datetime | None = None,
    *,
    frame_reference_time_ms: float | None = None,
    frame_duration_ms: float | None = None,
    half_life_s: float | None = None,
) -> datetime:
    """Scan start per the QIBA pseudo-code (see module docstring).

    When the series time is after the acquisition (post-processed series) and no GE private scan
    datetime exists, the scan start is back-computed from the earliest frame: acquisition start
    - FrameReferenceTime + the decay-weighted average count-rate time within the frame
    (1/lambda x ln(lambda d / (1 - e^-lambda d))), which the pseudo-code calls reliable in all cases;
    without those tags the earliest acquisition datetime is used.
    """
    if series_datetime is None and earliest_acquisition_datetime is None:
        raise DicomConformanceError("neither SeriesDate/Time nor AcquisitionDate/Time present; cannot time the scan")
    if series_datetime is None:
        return ge_private_scan_datetime or earliest_acquisition_datetime  # type: ignore[return-value]
    if earliest_acquisition_datetime is None or series_datetime <= earliest_acquisition_datetime:
        return series_datetime
    # Series time after acquisition: series was (re)created after the scan (post-processing).
    if ge_private_scan_datetime is not None:
        return ge_private_scan_datetime
    if frame_reference_time_ms and frame_duration_ms and half_life_s and frame_reference_time_ms > 0 \
            and frame_duration_ms > 0:
        lam = math.log(2) / half_life_s
        dd = lam * frame_duration_ms / 1000.0
        t_avg = math.log(dd / (1 - math.exp(-dd))) / lam
        return earliest_acquisition_datetime - timedelta(seconds=frame_reference_time_ms / 1000.0 - t_avg)
    return earliest_acquisition_datetime


def decayed_activity_bq(activity_bq: float, elapsed_s: float, half_life_s: float) -> float:
    """Activity after ``elapsed_s`` seconds of physical decay (negative elapsed = back-decay)."""
    if half_life_s <= 0 or not math.isfinite(half_life_s):
        raise InvalidInputError(f"half-life must be positive, got {half_life_s} s")
    return activity_bq * 2.0 ** (-elapsed_s / half_life_s)


def frame_decay_factors(
    elapsed_start_s: list[float], duration_s: list[float | None], half_life_s: float
) -> list[float]:
    """For DecayCorrection NONE: mean fraction of injected activity present during each frame.

    factor = 2^(-t0/T) * (1 - e^(-lambda d)) / (lambda d), the decay averaged over the frame.
    """
    lam = math.log(2) / half_life_s
    out = []
    for t0, d in zip(elapsed_start_s, duration_s, strict=True):
        f = math.exp(-lam * t0)
        if d and d > 0:
            f *= (1 - math.exp(-lam * d)) / (lam * d)
        out.append(f)
    return out


def lbm_janmahasatian2005_kg(weight_kg: float, height_m: float, sex: str) -> float:
    """Lean body mass (kg), Janmahasatian et al., Clin Pharmacokinet 2005;44(10):1051-65."""
    _check_body(weight_kg, height_m)
    bmi = weight_kg / height_m**2
    return _by_sex(sex, 9270.0 * weight_kg / (6680.0 + 216.0 * bmi), 9270.0 * weight_kg / (8780.0 + 244.0 * bmi),
                   "lean body mass (LBMJANMA)")


def _by_sex(sex: str | None, male: float, female: float, what: str) -> float:
    """The male or female value; PatientSex O: their mean (IBSI-SUV manual's proposal)."""
    s = (sex or "").strip().upper()
    if s == "M":
        return male
    if s == "F":
        return female
    if s == "O":
        return (male + female) / 2.0
    raise InvalidInputError(f"PatientSex (0010,0040) must be M, F or O for {what}, got {sex or 'nothing'!r}")


def lbm_james1976_kg(weight_kg: float, height_m: float, sex: str, *, male_constant: float = 120.0) -> float:
    """Lean body mass (kg) by James WPT, Research on obesity, HMSO 1976 (DICOM SUVType LBM).

    ``male_constant`` 128 gives DICOM's LBMJAMES128 (the male constant as often quoted, e.g. by
    Morgan DJ & Bray KM, Clin Pharmacokinet 1994); the female constant is 148 in both.
    """
    _check_body(weight_kg, height_m)
    r2 = (weight_kg / (height_m * 100.0)) ** 2
    return _by_sex(sex, 1.10 * weight_kg - male_constant * r2, 1.07 * weight_kg - 148.0 * r2,
                   "lean body mass (James)")


def ibw_kg(height_m: float, sex: str) -> float:
    """Ideal body weight (kg) as the IBSI-SUV manual gives it for SUVType IBW (H in cm):
    48.0 + 1.06 (H - 152) (male), 45.5 + 0.91 (H - 152) (female)."""
    if not (0.3 < height_m < 2.8):
        raise InvalidInputError(f"PatientSize (height) must be in metres between 0.3 and 2.8, got {height_m}")
    h = height_m * 100.0
    return _by_sex(sex, 48.0 + 1.06 * (h - 152.0), 45.5 + 0.91 * (h - 152.0), "ideal body weight (IBW)")


def suv_normaliser(suv_type: str, weight_kg: float, height_m: float | None, sex: str | None) -> float:
    """The normaliser of an SUV type: grams (BW, LBM*, IBW) or cm^2 (BSA)."""
    t = (suv_type or "BW").strip().upper()
    if t == "BW":
        return weight_kg * 1000.0
    if height_m is None or not (height_m > 0):
        raise DicomConformanceError(f"PatientSize (0010,1020) missing or zero; SUVType {t} needs the height")
    if t == "BSA":
        return bsa_dubois1916_m2(weight_kg, height_m) * 1e4
    if t == "LBM":
        return lbm_james1976_kg(weight_kg, height_m, sex or "", male_constant=120.0) * 1000.0
    if t == "LBMJAMES128":
        return lbm_james1976_kg(weight_kg, height_m, sex or "", male_constant=128.0) * 1000.0
    if t == "LBMJANMA":
        return lbm_janmahasatian2005_kg(weight_kg, height_m, sex or "") * 1000.0
    if t == "IBW":
        return ibw_kg(height_m, sex or "") * 1000.0
    raise DicomConformanceError(f"SUVType (0054,1006) {suv_type!r}; expected one of {', '.join(SUV_TYPES)}")


def stored_suv_to_suvbw(
    units: str, suv_type: str | None, weight_kg: float | None, height_m: float | None, sex: str | None
) -> tuple[float, tuple[str, ...]]:
    """Factor turning stored SUV pixels (Units GML with SUVType, or CM2ML) into SUVbw, and notes.

    stored = C x normaliser / dose and SUVbw = C x W(g) / dose, so SUVbw = stored x W(g) / normaliser.
    """
    u = (units or "").strip().upper()
    t = (suv_type or "").strip().upper()
    if u == "GML":
        t = t or "BW"  # DICOM: SUVType absent with Units GML means BW
        if t == "BSA":
            raise DicomConformanceError("Units GML with SUVType BSA is inconsistent (SUVbsa is stored as CM2ML)")
    elif u == "CM2ML":
        if t not in ("", "BSA"):
            raise DicomConformanceError(f"Units CM2ML with SUVType {t} is inconsistent (CM2ML is SUVbsa)")
        t = "BSA"
    else:
        raise DicomConformanceError(f"Units {units!r} does not hold a stored SUV")
    if t not in SUV_TYPES:
        raise DicomConformanceError(f"SUVType (0054,1006) {suv_type!r}; expected one of {', '.join(SUV_TYPES)}")
    if t == "BW":
        return 1.0, ()
    notes: list[str] = []
    w, wnote = weight_kg_from_header(weight_kg)
    if wnote:
        notes.append(wnote)
    h = height_m
    if h is not None and 30.0 <= h <= 280.0:
        notes.append(f"PatientSize (0010,1020) {h:g} read as centimetres (DICOM stores metres)")
        h = h / 100.0
    if t != "BSA" and (sex or "").strip().upper() == "O":
        notes.append(f"PatientSex O: SUVType {t} converted with the mean of the male and female "
                     "normalisers (IBSI-SUV manual)")
    norm = suv_normaliser(t, w, h, sex)
    if not (norm > 0):
        raise InvalidInputError(f"SUVType {t} normaliser is not positive ({norm:g}) for weight {w:g} kg, height {h}")
    unit = "cm2/mL" if t == "BSA" else "g/mL"
    notes.append(f"pixels stored as SUV{t.lower()} ({unit}, Units {u}); converted to SUVbw x {w * 1000.0 / norm:.6g}")
    return w * 1000.0 / norm, tuple(notes)


def dose_bq_from_header(value: float) -> tuple[float, str, str | None]:
    """RadionuclideTotalDose in Bq, the unit assumed, and a note when it was not Bq.

    DICOM requires Bq, but some scanners write MBq; the IBSI-SUV manual's survey shows two clusters
    (~4x10^2 and ~4x10^8) and recommends recognising the unit by magnitude. Below 10^4 the value is
    MBq (up to 10 GBq); from 10^6 it is Bq; in between (10 kBq to 1 MBq: no clinical administration,
    perhaps kBq) it is refused.
    """
    if not (value > 0) or not math.isfinite(value):
        raise DicomConformanceError(f"RadionuclideTotalDose (0018,1074) is {value:g}; it must be positive")
    if value < MBQ_BELOW:
        return value * 1e6, "MBq", (f"RadionuclideTotalDose (0018,1074) {value:g} read as MBq "
                                    f"({value * 1e6:.4g} Bq): below 10^4 it cannot be Bq")
    if value < 1e6:
        raise InvalidInputError(
            f"RadionuclideTotalDose (0018,1074) is {value:g} Bq, implausibly small: DICOM stores Bq "
            "(the scanner may have written kBq); supply the activity with --injected-mbq"
        )
    return value, "Bq", None


def weight_kg_from_header(value: float | None) -> tuple[float, str | None]:
    """PatientWeight in kg and a note when it was recognised as grams (> 1000)."""
    if value is None or not (value > 0):
        raise DicomConformanceError(
            "PatientWeight (0010,1030) missing or zero; SUV needs the body weight (supply --weight-kg)"
        )
    if value > GRAMS_ABOVE:
        return value / 1000.0, f"PatientWeight (0010,1030) {value:g} read as grams ({value / 1000.0:g} kg)"
    if not (value < 500):
        raise InvalidInputError(f"PatientWeight {value:g} kg is implausible (expected kg < 500, or grams > 1000)")
    return value, None


def bsa_dubois1916_m2(weight_kg: float, height_m: float) -> float:
    """Body surface area (m^2), Du Bois & Du Bois, Arch Intern Med 1916;17:863-71."""
    _check_body(weight_kg, height_m)
    return 0.007184 * weight_kg**0.425 * (height_m * 100.0) ** 0.725


def _check_body(weight_kg: float, height_m: float) -> None:
    if not (0 < weight_kg < 500):
        raise InvalidInputError(f"PatientWeight must be in kg between 0 and 500, got {weight_kg}")
    if not (0.3 < height_m < 2.8):
        raise InvalidInputError(f"PatientSize (height) must be in metres between 0.3 and 2.8, got {height_m}")


def suv_factors(
    *,
    weight_kg: float | None,
    injected_activity_bq: float | None,
    injection_time: datetime | None,
    reference_time: datetime | None,
    decay_correction: str,
    half_life_s: float | None,
    height_m: float | None = None,
    sex: str | None = None,
) -> SuvFactors:
    """SUV factors for Bq/mL images decay-corrected to ``reference_time`` (START) or injection (ADMIN).

    For DecayCorrection NONE pass the frame start as ``reference_time`` and apply
    :func:`frame_decay_factors` yourself; this function then returns the START-like factor.
    Raises :class:`DicomConformanceError` naming the tag when a required value is missing.
    """
    notes: list[str] = []
    weight_kg, wnote = weight_kg_from_header(weight_kg)
    if wnote:
        notes.append(wnote)
    if injected_activity_bq is None or not (injected_activity_bq > 0):
        raise DicomConformanceError(
            "RadionuclideTotalDose (0018,1074) missing or zero; SUV needs the injected activity "
            "(supply --injected-mbq)"
        )
    injected_activity_bq, dose_unit, dnote = dose_bq_from_header(injected_activity_bq)
    if dnote:
        notes.append(dnote)
    dc = (decay_correction or "").strip().upper()
    if dc == "ADMIN":
        decayed, dt = injected_activity_bq, 0.0
    elif dc in ("START", "NONE"):
        if injection_time is None:
            raise DicomConformanceError(
                "RadiopharmaceuticalStartDateTime (0018,1078) / RadiopharmaceuticalStartTime (0018,1072) "
                "missing; SUV needs the injection time (supply --injection-time)"
            )
        if reference_time is None:
            raise DicomConformanceError("scan time (SeriesTime/AcquisitionTime) missing; cannot decay the dose")
        if half_life_s is None or not (half_life_s > 0):
            raise DicomConformanceError(
                "RadionuclideHalfLife (0018,1075) missing; SUV needs the half-life (supply --half-life-s)"
            )
        dt = (reference_time - injection_time).total_seconds()
        if dt < 0:
            raise InvalidInputError(
                f"injection time {injection_time.isoformat()} is after the scan time "
                f"{reference_time.isoformat()}; check RadiopharmaceuticalStartDateTime and SeriesTime"
            )
        if dt > 10 * 24 * 3600:
            raise InvalidInputError(f"injection {dt / 86400:.1f} days before the scan; check the dates")
        decayed = decayed_activity_bq(injected_activity_bq, dt, half_life_s)
    else:
        raise DicomConformanceError(
            f"DecayCorrection (0054,1102) is {decay_correction!r}; expected START, ADMIN or NONE"
        )
    bw = weight_kg * 1000.0 / decayed
    lbm = bsa = None
    # SUL and SUVbsa need a plausible height in metres (PatientSize); without one they are omitted,
    # SUVbw does not depend on it.
    if height_m is not None and 0.3 < height_m < 2.8:
        bsa = bsa_dubois1916_m2(weight_kg, height_m) * 1e4 / decayed
        sx = (sex or "").strip().upper()
        if sx in ("M", "F", "O"):
            lbm = lbm_janmahasatian2005_kg(weight_kg, height_m, sx) * 1000.0 / decayed
            if sx == "O":
                notes.append("PatientSex O: SUL uses the mean of the male and female Janmahasatian lean body "
                             "masses (IBSI-SUV manual)")
    return SuvFactors(bw=bw, lbm=lbm, bsa=bsa, decayed_dose_bq=decayed, decay_time_s=dt,
                      dose_unit_assumed=dose_unit, weight_unit_assumed="g" if wnote else "kg", notes=tuple(notes))

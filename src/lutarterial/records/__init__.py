"""Screening records at the edge: own-format model + JSON Schema, FHIR R4 Bundles, file loading."""

from lutarterial.records.fhir import bundle_to_patient, bundle_to_patients, is_fhir_bundle
from lutarterial.records.io import (
    Record,
    RecordError,
    iter_records,
    load_records,
    parse_json_text,
    parse_json_text_many,
    parse_record,
    parse_records,
)
from lutarterial.records.schema import ScreeningRecord, json_schema
from lutarterial.records.synthetic import make_record, make_records

__all__ = [
    "Record",
    "RecordError",
    "ScreeningRecord",
    "bundle_to_patient",
    "bundle_to_patients",
    "is_fhir_bundle",
    "iter_records",
    "json_schema",
    "load_records",
    "make_record",
    "make_records",
    "parse_json_text",
    "parse_json_text_many",
    "parse_record",
    "parse_records",
]

"""Electronic signatures in the reports (issue 13 item 3, 21 CFR 11.50): the participant report prints
each signature (printed name, date-time with its time zone, meaning, what it covers, valid or voided
with when and why) in its HTML and its PDF (text read back by poppler's ``pdftotext``); a change to
the signed data shows the signature voided; an unsigned participant's report says so; the trial
report counts casebooks signed / voided per site."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from lutarterial.cli.main import run
from lutarterial.registry import Registry, services
from lutarterial.registry.access import SYSTEM_ACTOR
from lutarterial.registry.audit import audited
from lutarterial.registry.models import User
from lutarterial.registry.services import actor_by_username

from .conftest import PASSWORD

SIGNER = "Dr Ines Vidal"


def _flat(text: str) -> str:
    """Whitespace (HTML line breaks, PDF line wraps) as single spaces."""
    return re.sub(r"\s+", " ", text)


def _pdf_text(pdf: Path) -> str:
    if shutil.which("pdftotext") is None:
        pytest.skip("poppler-utils (pdftotext) not installed: apt-get install -y poppler-utils")
    out = subprocess.run(["pdftotext", str(pdf), "-"], check=True, capture_output=True, text=True, timeout=60)
    return _flat(out.stdout)


def _report(db: str, tn: str, out: Path) -> tuple[str, str, str]:
    """The participant report: its HTML, the HTML's text (tags dropped) and the PDF's text."""
    with pytest.raises(SystemExit) as exc:
        run(["report", "participant", tn, "--db", db, "--user", "inv.bdx", "--out", str(out)])
    assert exc.value.code in (0, None)
    html = _flat((out / f"{tn}.html").read_text(encoding="utf-8"))
    return html, _flat(re.sub(r"<[^>]+>", "", html)), _pdf_text(out / f"{tn}.pdf")


@pytest.fixture
def signed(db: str) -> str:
    """BDX-001's casebook and its current imaging analysis signed by inv.bdx (printed name set)."""
    reg = Registry.open(db)
    try:
        with reg.session() as s, audited(s, SYSTEM_ACTOR, "printed name of the investigator"):
            s.query(User).filter(User.username == "inv.bdx").one().full_name = SIGNER
        with reg.session() as s:
            inv = actor_by_username(s, "inv.bdx")
            analysis = services.list_analyses(s, inv, "BDX-001")[-1]
            services.sign(s, inv, "BDX-001", password=PASSWORD, username="inv.bdx",
                          meaning="responsibility: investigator sign-off of the casebook")
            services.sign(s, inv, "BDX-001", password=PASSWORD, meaning="reviewed and approved",
                          table_name="imaging_analyses", row_id=analysis.id)
    finally:
        reg.dispose()
    return db


def test_participant_report_prints_the_signatures_and_shows_a_voided_one(signed: str, tmp_path: Path) -> None:
    html, shown, pdf = _report(signed, "BDX-001", tmp_path / "before")
    for text in (shown, pdf):
        assert "Electronic signatures" in text
        assert f"Casebook: signed by {SIGNER}" in text
        assert "responsibility: investigator sign-off of the casebook" in text and "reviewed and approved" in text
        assert "whole casebook of BDX-001" in text and "imaging analysis #" in text
        assert re.search(r"20\d\d-\d\d-\d\d \d\d:\d\d:\d\d UTC", text), "date-time with its time zone"
        assert "voided" not in text.split("Electronic signatures")[-1]
    assert html.count("<b>valid</b>") == 2

    reg = Registry.open(signed)
    try:
        with reg.session() as s:  # a change to the casebook's data voids the casebook signature
            services.record_lab(s, actor_by_username(s, "admin"), "BDX-001", analyte="platelets", value=150,
                                unit="10*9/L", collected_date="2024-02-01", reason="lab entered late")
    finally:
        reg.dispose()
    html, shown, pdf = _report(signed, "BDX-001", tmp_path / "after")
    for text in (shown, pdf):
        assert "Casebook: signature voided by" in text
        sigs = text.split("Electronic signatures")[-1]
        assert re.search(r"voided on 20\d\d-\d\d-\d\d \d\d:\d\d:\d\d UTC, why: signed data changed", sigs), sigs[:2000]
        assert "lab_results" in sigs  # why: the change that voided it
    assert html.count("<b>valid</b>") == 1  # the imaging analysis did not change: its signature holds


def test_unsigned_participant_report_says_not_signed(db: str, tmp_path: Path) -> None:
    _html, shown, pdf = _report(db, "BDX-002", tmp_path)
    for text in (shown, pdf):
        assert "Casebook: not signed" in text
        assert "not signed: no electronic signature on the casebook or on a form of this report" in text


def test_trial_report_counts_signed_and_voided_casebooks_per_site(signed: str) -> None:
    from lutarterial.reports.render import render_html
    from lutarterial.workflows.reports import trial_report_context

    reg = Registry.open(signed)
    try:
        with reg.session() as s:
            inv = actor_by_username(s, "inv.bdx")
            services.sign(s, inv, "BDX-002", password=PASSWORD, meaning="reviewed and approved")
            services.record_lab(s, actor_by_username(s, "admin"), "BDX-002", analyte="platelets", value=150,
                                unit="10*9/L", collected_date="2024-02-01", reason="voids BDX-002's signature")
        with reg.session(readonly=True) as s:
            stat = services.signature_summary_by_site(s, actor_by_username(s, "stat"))
            own = services.signature_summary_by_site(s, inv)
            html = _flat(render_html("trial.html", trial_report_context(s, inv, n_boot=200)))
    finally:
        reg.dispose()
    bdx = {"site": "BDX", "participants": 2, "casebooks_signed": 1, "casebooks_voided": 1,
           "casebooks_not_signed": 0, "form_signatures_valid": 1, "form_signatures_voided": 0}
    assert stat == [bdx, {"site": "TLS", "participants": 1, "casebooks_signed": 0, "casebooks_voided": 0,
                          "casebooks_not_signed": 1, "form_signatures_valid": 0, "form_signatures_voided": 0}]
    assert own == [bdx]  # the investigator's scope: own site only
    assert "Electronic signatures (investigator sign-off)" in html
    row = ('<td>BDX</td><td class="n">2</td><td class="n">1</td><td class="n">1</td><td class="n">0</td>'
           '<td class="n">1</td><td class="n">0</td>')
    assert row in html and "<td>TLS</td>" not in html

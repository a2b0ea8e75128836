"""Trial and participant reports: the PDF is really rendered (text read back with pypdf) and holds
the expected sections; web downloads honour roles and sites; identities never appear."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from lutarterial.cli.main import run

from .conftest import PASSWORD

pypdf = pytest.importorskip("pypdf", reason="pypdf (dev dependency) reads the rendered PDF's text")

TRIAL_SECTIONS = ("The answer", "Methods", "Primary endpoint", "Participants", "Excluded VOIs", "CONSORT flow",
                  "Safety", "Response (RECIST 1.1)", "Progression-free survival", "Dosimetry",
                  "Data snapshot, versions and reproduction")
PARTICIPANT_SECTIONS = ("Screening", "Timeline", "Imaging: IAH vs IV", "Dosimetry", "Safety", "Response (RECIST 1.1)")


def _text(pdf: bytes) -> tuple[str, str]:
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    pages = [p.extract_text() for p in reader.pages]
    return pages[0], "\n".join(pages)


def test_trial_report_cli_pdf_has_answer_first_and_sections(db: str, tmp_path: Path) -> None:
    out = tmp_path / "rep"
    with pytest.raises(SystemExit) as exc:
        run(["report", "trial", "--db", db, "--user", "stat", "--out", str(out), "--n-boot", "500", "--seed", "5"])
    assert exc.value.code in (0, None)
    first, text = _text((out / "report.pdf").read_bytes())
    assert "GMR" in first and "95% CI" in first and "p =" in first and "n = 3 participants" in first
    assert "p = <" not in text  # "p < 0.001", the relation written once
    for title in TRIAL_SECTIONS:
        assert title in text, title
    assert "Reproduce" in text and "Audit head" in text and "Seed 5" in text
    html = (out / "report.html").read_text()
    assert "lutarterial report trial --db" in html and "--seed 5" in html
    assert "<h2 id=\"answer\">The answer</h2>" in html and "data:image/png;base64," in html


def test_participant_report_cli(db: str, tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exc:
        run(["report", "participant", "BDX-001", "--db", db, "--user", "inv.bdx", "--out", str(tmp_path)])
    assert exc.value.code in (0, None)
    first, text = _text((tmp_path / "BDX-001.pdf").read_bytes())
    assert "BDX-001" in first
    for title in PARTICIPANT_SECTIONS:
        assert title in text, title


def test_participant_report_other_site_denied(db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        run(["report", "participant", "TLS-001", "--db", db, "--user", "inv.bdx", "--out", str(tmp_path)])
    assert exc.value.code == 3 and capsys.readouterr().err.startswith("error: ")


@pytest.fixture
def client_for(db: str) -> Any:
    from fastapi.testclient import TestClient

    from lutarterial.web.app import create_app
    from lutarterial.web.settings import WebSettings

    app = create_app(db, settings=WebSettings(secret_key="endpoint-test-secret-" + "k" * 40), upgrade=False)
    clients = []

    def make(username: str | None) -> TestClient:
        c = TestClient(app, raise_server_exceptions=False)
        if username:
            r = c.post("/api/login", json={"username": username, "password": PASSWORD})
            assert r.status_code == 200, r.text
            c.headers["X-CSRF-Token"] = r.json()["csrf_token"]
        clients.append(c)
        return c

    yield make
    for c in clients:
        c.close()
    app.state.backend.close()


def test_web_downloads_by_role_and_site(client_for: Any) -> None:
    stat = client_for("stat")
    r = stat.get("/api/reports/trial.pdf?n_boot=200")
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    first, _ = _text(r.content)
    assert "n = 3 participants" in first  # statistician: all sites
    inv = client_for("inv.bdx")
    first, _ = _text(inv.get("/api/reports/trial.pdf?n_boot=200").content)
    assert "n = 2 participants" in first  # investigator: own site only
    # another site's participant answers like a missing one (issue 9: 404, nothing learnt)
    assert inv.get("/api/participants/TLS-001/report.pdf").status_code in (403, 404)
    assert inv.get("/api/participants/BDX-999/report.pdf").status_code == 404
    assert stat.get("/api/reports/trial.pdf?n_boot=5").status_code in (400, 422)
    r = stat.get("/api/participants/TLS-001/report.pdf")
    assert r.status_code == 200 and "TLS-001" in _text(r.content)[0]
    page = stat.get("/reports")
    assert page.status_code == 200 and "/api/reports/trial.pdf" in page.text
    assert client_for(None).get("/api/reports/trial.pdf").status_code == 401



def test_statistician_web_reads_all_sites_writes_nothing_sees_no_identity(client_for: Any) -> None:
    stat = client_for("stat")
    page = stat.get("/participants")
    assert page.status_code == 200 and "BDX-001" in page.text and "TLS-001" in page.text
    assert stat.get("/participants/TLS-001/identity").status_code in (403, 404)
    r = stat.post("/api/participants", json={"site": "BDX", "reason": "not allowed"})
    assert r.status_code == 403 and "may not" in r.text, r.text  # the role, not the CSRF token, refuses


def test_identity_never_in_reports(db: str, tmp_path: Path) -> None:
    from lutarterial.registry import Registry, services
    from lutarterial.registry.services import actor_by_username

    reg = Registry.open(db)
    try:
        with reg.session() as s:
            admin = actor_by_username(s, "admin")
            services.register_participant(s, admin, site_code="BDX", reason="t", identity=services.IdentityInput(
                "Zyxwvutsson", "Quirinella", "1950-01-02", "HOSP-77731"))
    finally:
        reg.dispose()
    with pytest.raises(SystemExit):
        run(["report", "trial", "--db", db, "--user", "admin", "--out", str(tmp_path), "--n-boot", "200"])
    with pytest.raises(SystemExit):
        run(["report", "participant", "BDX-003", "--db", db, "--user", "admin", "--out", str(tmp_path)])
    for f in ("report.html", "BDX-003.html"):
        html = (tmp_path / f).read_text()
        for secret in ("Zyxwvutsson", "Quirinella", "1950-01-02", "HOSP-77731"):
            assert secret not in html

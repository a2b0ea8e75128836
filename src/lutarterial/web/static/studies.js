// issue 11: studies panel of the imaging and dosimetry pages (REST: /api/participants/{tn}/studies,
// /analyses/run, /api/jobs/{id}). The running job's id is kept in localStorage, so a reload resumes
// showing its progress (its state lives in the server's analysis_jobs table).
(function () {
  "use strict";
  const panel = document.getElementById("studies-panel");
  if (!panel) return;
  const tn = panel.dataset.tn, csrf = panel.dataset.csrf;
  const base = "/api/participants/" + encodeURIComponent(tn);
  const jobKey = "lutarterial-job-" + tn;
  const $ = (id) => document.getElementById(id);
  const text = (s) => (s === null || s === undefined ? "" : String(s));

  async function api(path, opts) {
    const r = await fetch(path, Object.assign({ credentials: "same-origin" }, opts || {}));
    let body = null;
    try { body = await r.json(); } catch (e) { body = { detail: r.statusText }; }
    if (!r.ok) throw new Error((body && (body.detail || body.error)) || ("HTTP " + r.status));
    return body;
  }

  function option(sel, value, label) {
    const o = document.createElement("option");
    o.value = value; o.textContent = label; sel.appendChild(o);
  }

  async function load() {
    const doc = await api(base + "/studies");
    const tbody = $("study-series").querySelector("tbody");
    tbody.textContent = "";
    const series = [];
    doc.studies.forEach((st) => st.series.forEach((s) => series.push(s)));
    if (!series.length) {
      const tr = tbody.insertRow(); const td = tr.insertCell(); td.colSpan = 7;
      td.className = "muted"; td.textContent = "No study imported yet.";
    }
    series.forEach((s) => {
      const tr = tbody.insertRow();
      tr.dataset.modality = s.modality;
      [s.modality, s.acquisition_time, s.route ? s.route.toUpperCase() : "?", s.time_after_admin_h, s.injected_mbq,
       s.n_files, s.series_instance_uid].forEach((v, i) => {
        const td = tr.insertCell(); td.textContent = text(v); if (i === 6) td.className = "mono";
      });
    });
    for (const [id, route] of [["run-iv", "iv"], ["run-iah", "iah"]]) {
      const sel = $(id); sel.textContent = "";
      option(sel, "", "automatic");
      series.filter((s) => s.modality === "PT").forEach((s) => {
        option(sel, s.series_instance_uid, `${text(s.acquisition_time)} ${s.route ? s.route.toUpperCase() : "?"}`);
      });
      const only = series.filter((s) => s.modality === "PT" && s.route === route);
      if (only.length === 1) sel.value = only[0].series_instance_uid;
    }
    const folder = $("study-folder"); folder.textContent = ""; option(folder, "", "—");
    (doc.import_folders || []).forEach((f) => option(folder, f, f));
  }

  $("study-upload").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const msg = $("study-import-msg");
    const fd = new FormData();
    const file = $("study-file").files[0];
    if (file) fd.append("file", file); else if ($("study-folder").value) fd.append("folder", $("study-folder").value);
    fd.append("reason", $("study-reason").value);
    if ($("study-route").value) fd.append("route", $("study-route").value);
    msg.textContent = "importing…"; msg.dataset.state = "importing";
    try {
      const rep = await api(base + "/studies", { method: "POST", body: fd, headers: { "X-CSRF-Token": csrf } });
      msg.textContent = `Imported: ${rep.files_new} new file(s), ${rep.files_unchanged} unchanged, ${rep.series.length} series.`;
      await load();
      msg.dataset.state = "imported";
    } catch (e) { msg.textContent = "Import refused: " + e.message; msg.dataset.state = "refused"; }
  });

  function show(job) {
    const box = $("job-status");
    const pct = Math.round((job.progress || 0) * 100);
    box.dataset.status = job.status;
    box.textContent = `Job ${job.id}: ${job.status} (${pct} %)` + (job.message ? ` — ${job.message}` : "");
    if (job.status === "done") {
      const a = document.createElement("a"); a.href = window.location.pathname; a.textContent = " Show the results";
      a.id = "job-results"; box.appendChild(a);
    }
  }

  async function poll(id) {
    try {
      const job = await api("/api/jobs/" + id);
      show(job);
      if (job.status === "queued" || job.status === "running") { setTimeout(() => poll(id), 1000); return; }
      localStorage.removeItem(jobKey);
    } catch (e) { $("job-status").textContent = "Job " + id + ": " + e.message; localStorage.removeItem(jobKey); }
  }

  $("analysis-run").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const body = { reason: $("run-reason").value };
    if ($("run-iv").value) body.iv_series = $("run-iv").value;
    if ($("run-iah").value) body.iah_series = $("run-iah").value;
    if ($("run-only").value) body.only = $("run-only").value;
    try {
      const job = await api(base + "/analyses/run", { method: "POST", body: JSON.stringify(body),
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf } });
      localStorage.setItem(jobKey, String(job.id));
      show(job); poll(job.id);
    } catch (e) { $("job-status").dataset.status = "refused"; $("job-status").textContent = "Not started: " + e.message; }
  });

  load().catch((e) => { $("study-import-msg").textContent = e.message; });
  const running = localStorage.getItem(jobKey);
  if (running) poll(running);
})();

// Live screening: when a field changes, send the record to the JSON endpoint and show each
// criterion's status with its reason. The server computes everything; this only displays.
(function () {
  "use strict";
  var form = document.getElementById("screening-form");
  if (!form) return;
  var jsonBox = document.getElementById("record-json");
  var list = document.getElementById("criteria");
  var verdict = document.getElementById("verdict");
  var state = document.getElementById("live-state");
  var timer = null, seq = 0;

  function setPath(obj, path, value) {
    var parts = path.split(".");
    for (var i = 0; i < parts.length - 1; i++) {
      if (typeof obj[parts[i]] !== "object" || obj[parts[i]] === null) obj[parts[i]] = {};
      obj = obj[parts[i]];
    }
    if (value === undefined) delete obj[parts[parts.length - 1]];
    else obj[parts[parts.length - 1]] = value;
  }

  function fieldValue(el) {
    var v = el.value.trim(), t = el.getAttribute("data-type");
    if (v === "") return undefined;
    if (t === "number" || t === "integer") { var n = Number(v); return isNaN(n) ? v : n; }
    if (t === "boolean") return v === "true";
    if (t === "json") { try { return JSON.parse(v); } catch (e) { return undefined; } }
    return v;
  }

  function currentRecord() {
    var rec;
    try { rec = JSON.parse(jsonBox.value || "{}"); } catch (e) { rec = {}; }
    return rec;
  }

  function getPath(obj, path) {
    var parts = path.split(".");
    for (var i = 0; i < parts.length; i++) {
      if (obj === null || typeof obj !== "object") return undefined;
      obj = obj[parts[i]];
    }
    return obj;
  }

  // JSON edited by hand: show its values in the fields, so saving keeps them.
  function syncToFields(rec) {
    if (measBody) measToTable(rec.measurements);
    if (window.lutRepeat) window.lutRepeat.write(rec);  // repeating groups (repeat.js)
    form.querySelectorAll("[name^='rec.']").forEach(function (el) {
      var v = getPath(rec, el.name.slice(4)), t = el.getAttribute("data-type");
      if (v === undefined || v === null) el.value = "";
      else if (t === "json") el.value = JSON.stringify(v);
      else el.value = String(v);
    });
  }

  // --- measurements table -------------------------------------------------------------------
  var measBody = document.querySelector("#meas-table tbody");
  var measSeq = measBody ? measBody.rows.length : 0;
  var SHOWN = ["analyte", "value", "unit", "date", "reference_high"];

  function measField(tr, key) { return tr.querySelector("[name$='." + key + "']"); }

  function measurementsFromTable() {
    var out = [];
    Array.prototype.forEach.call(measBody.rows, function (tr) {
      var analyte = measField(tr, "analyte").value, value = measField(tr, "value").value.trim();
      if (!analyte && !value) return;
      var m = {};
      var extra = measField(tr, "extra").value;
      if (extra) { try { m = JSON.parse(extra); } catch (e) { m = {}; } }
      m.analyte = analyte;
      ["value", "reference_high"].forEach(function (k) {
        var v = measField(tr, k).value.trim();
        if (v !== "") m[k] = Number(v); else delete m[k];
      });
      ["unit", "date"].forEach(function (k) {
        var v = measField(tr, k).value.trim();
        if (v !== "") m[k] = v; else delete m[k];
      });
      out.push(m);
    });
    return out;
  }

  function addMeasRow(m) {
    var i = measSeq++;
    var tr = document.createElement("tr");
    var opts = document.getElementById("meas-options").innerHTML;
    tr.innerHTML =
      '<td><select name="meas.' + i + '.analyte"><option value=""></option>' + opts + '</select></td>' +
      '<td><input name="meas.' + i + '.value" type="number" step="any"></td>' +
      '<td><input name="meas.' + i + '.unit" type="text"></td>' +
      '<td><input name="meas.' + i + '.date" type="date"></td>' +
      '<td><input name="meas.' + i + '.reference_high" type="number" step="any">' +
      '<input type="hidden" name="meas.' + i + '.extra"></td>' +
      '<td><button type="button" class="btn secondary meas-remove" aria-label="Remove measurement">×</button></td>';
    m = m || {};
    var extra = {};
    Object.keys(m).forEach(function (k) { if (SHOWN.indexOf(k) < 0) extra[k] = m[k]; });
    SHOWN.forEach(function (k) { if (m[k] !== undefined && m[k] !== null) measField(tr, k).value = String(m[k]); });
    measField(tr, "extra").value = Object.keys(extra).length ? JSON.stringify(extra) : "";
    measBody.appendChild(tr);
    return tr;
  }

  function measToTable(list) {
    while (measBody.rows.length) measBody.deleteRow(0);
    (Array.isArray(list) ? list : []).forEach(function (m) { if (m && typeof m === "object") addMeasRow(m); });
  }

  if (measBody) {
    var addBtn = document.getElementById("meas-add");
    if (addBtn) addBtn.addEventListener("click", function () {
      var tr = addMeasRow({});
      measField(tr, "analyte").focus();
    });
    measBody.addEventListener("click", function (e) {
      if (e.target.classList && e.target.classList.contains("meas-remove")) {
        e.target.closest("tr").remove();
        schedule(false);
      }
    });
  }

  function syncFromFields() {
    var rec = currentRecord();
    if (measBody) {
      var ms = measurementsFromTable();
      if (ms.length) rec.measurements = ms; else delete rec.measurements;
    }
    form.querySelectorAll("[name^='rec.']").forEach(function (el) {
      setPath(rec, el.name.slice(4), fieldValue(el));
    });
    if (window.lutRepeat) window.lutRepeat.read(rec);  // repeating groups (repeat.js)
    jsonBox.value = JSON.stringify(rec, null, 2);
    return rec;
  }

  function text(tag, cls, content) {
    var el = document.createElement(tag);
    if (cls) el.className = cls;
    if (content !== undefined) el.textContent = content;
    return el;
  }

  function render(result) {
    var overall = result.overall || "unknown";
    verdict.className = "verdict " + overall;
    verdict.textContent = overall.replace(/_/g, " ");
    list.innerHTML = "";
    (result.criteria || []).forEach(function (c) {
      var li = document.createElement("li");
      var left = text("span"); left.appendChild(text("span", "badge " + c.status, c.status));
      var right = text("span");
      right.appendChild(text("span", "id", c.id + " "));
      right.appendChild(document.createTextNode(c.text || ""));
      right.appendChild(text("div", "reason", c.reason || ""));
      li.appendChild(left); li.appendChild(right); list.appendChild(li);
    });
  }

  function evaluate(record) {
    var mine = ++seq;
    state.textContent = "checking…";
    var body = {
      record: record,
      as_of: document.getElementById("as_of").value || null,
      protocol_version: document.getElementById("protocol_version").value || null
    };
    fetch(form.getAttribute("data-evaluate-url"), {
      method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRF-Token": form.getAttribute("data-csrf")},
      body: JSON.stringify(body)
    }).then(function (r) {
      return r.json().then(function (data) { return {ok: r.ok, data: data}; });
    }).then(function (res) {
      if (mine !== seq) return;
      if (!res.ok) { state.textContent = res.data.detail || "cannot evaluate"; return; }
      state.textContent = "live · protocol v" + (res.data.protocol_version || "?");
      render(res.data);
    }).catch(function () { if (mine === seq) state.textContent = "offline"; });
  }

  function schedule(fromJson) {
    clearTimeout(timer);
    timer = setTimeout(function () { evaluate(fromJson ? currentRecord() : syncFromFields()); }, 250);
  }

  form.addEventListener("input", function (e) {
    if (e.target === jsonBox) {
      try { syncToFields(JSON.parse(jsonBox.value || "{}")); } catch (err) { /* still typing */ }
      schedule(true);
    }
    else if ((e.target.name && (e.target.name.indexOf("rec.") === 0 || e.target.name.indexOf("meas.") === 0 ||
             e.target.name.indexOf("grp") === 0 || e.target.id === "as_of")) ||
             (e.target.classList && e.target.classList.contains("repeat"))) schedule(false);
  });
  form.addEventListener("change", function (e) {
    if (e.target.id === "protocol_version" || e.target.tagName === "SELECT" ||
        (e.target.name && e.target.name.indexOf("grpnone.") === 0)) schedule(false);
  });
  form.addEventListener("submit", function () { if (!jsonBox.readOnly) syncFromFields(); });
  if (!jsonBox.readOnly) evaluate(syncFromFields());
})();

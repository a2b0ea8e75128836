// Repeating groups of the screening form (issue 13): add/remove rows; fold rows into the record
// (lutRepeat.read) and the record into rows (lutRepeat.write) for the live panel and the JSON box.
(function () {
  "use strict";
  var tables = document.querySelectorAll("table.repeat[data-path]");
  if (!tables.length) return;
  var seq = {};

  function tplFor(path) { return document.getElementById("rep-tpl-" + path.replace(/\./g, "-")); }
  function tableFor(path) { return document.getElementById("rep-" + path.replace(/\./g, "-")); }

  function addRow(path, values) {
    var body = tableFor(path).tBodies[0];
    if (seq[path] === undefined) seq[path] = body.rows.length + 1000;
    var i = seq[path]++;
    var html = tplFor(path).innerHTML.split("__i__").join(String(i));
    var tmp = document.createElement("tbody");
    tmp.innerHTML = html;
    var tr = tmp.firstElementChild;
    if (values) {
      tr.querySelectorAll("[name]").forEach(function (el) {
        var key = el.name.split(".").pop(), v = values[key];
        if (v === undefined || v === null) return;
        el.value = (typeof v === "boolean") ? (v ? "true" : "false") : String(v);
      });
    }
    body.appendChild(tr);
    return tr;
  }

  function coerce(el) {
    var v = el.value.trim();
    if (v === "") return undefined;
    if (el.type === "number") { var n = Number(v); return isNaN(n) ? v : n; }
    if (el.tagName === "SELECT" && (v === "true" || v === "false") && el.querySelector("option[value='true']") &&
        el.options.length <= 3) return v === "true";
    return v;
  }

  function setPath(obj, path, value) {
    var parts = path.split(".");
    for (var i = 0; i < parts.length - 1; i++) {
      if (typeof obj[parts[i]] !== "object" || obj[parts[i]] === null) obj[parts[i]] = {};
      obj = obj[parts[i]];
    }
    if (value === undefined) delete obj[parts[parts.length - 1]];
    else obj[parts[parts.length - 1]] = value;
  }

  function getPath(obj, path) {
    var parts = path.split(".");
    for (var i = 0; i < parts.length; i++) {
      if (obj === null || typeof obj !== "object") return undefined;
      obj = obj[parts[i]];
    }
    return obj;
  }

  function read(rec) {
    tables.forEach(function (t) {
      var path = t.getAttribute("data-path"), rows = [];
      Array.prototype.forEach.call(t.tBodies[0].rows, function (tr) {
        var row = {}, any = false;
        tr.querySelectorAll("[name]").forEach(function (el) {
          var v = coerce(el);
          if (v !== undefined) { row[el.name.split(".").pop()] = v; any = true; }
        });
        if (any) rows.push(row);
      });
      var none = document.querySelector("input[name='grpnone." + path + "']");
      setPath(rec, path, rows.length ? rows : (none && none.checked ? [] : undefined));
    });
    return rec;
  }

  function write(rec) {
    tables.forEach(function (t) {
      var path = t.getAttribute("data-path"), list = getPath(rec, path), body = t.tBodies[0];
      while (body.rows.length) body.deleteRow(0);
      (Array.isArray(list) ? list : []).forEach(function (r) { if (r && typeof r === "object") addRow(path, r); });
      var none = document.querySelector("input[name='grpnone." + path + "']");
      if (none) none.checked = Array.isArray(list) && list.length === 0;
    });
  }

  function changed(el) { el.dispatchEvent(new Event("input", {bubbles: true})); }

  document.querySelectorAll("button.rep-add").forEach(function (b) {
    b.addEventListener("click", function () {
      var tr = addRow(b.getAttribute("data-path"));
      var first = tr.querySelector("[name]");
      if (first) { first.focus(); changed(first); }
    });
  });
  tables.forEach(function (t) {
    t.addEventListener("click", function (e) {
      if (e.target.classList && e.target.classList.contains("rep-remove")) {
        e.target.closest("tr").remove();
        changed(t);
      }
    });
  });
  window.lutRepeat = {read: read, write: write};
})();

// riskdesk dashboard: keyboard, selection, confirmations, the spend chart, and a reporter of
// script errors and CSP violations (the browser tests assert there are none). No build step.
(function () {
  "use strict";

  function report(kind, detail) {
    try {
      var body = JSON.stringify({ kind: kind, detail: detail, page: location.pathname });
      fetch("/ui/csp-report", { method: "POST", body: body, credentials: "same-origin",
        headers: { "Content-Type": "application/json" }, keepalive: true });
    } catch (e) { /* nothing more to do */ }
  }
  document.addEventListener("securitypolicyviolation", function (e) {
    report("csp", e.violatedDirective + " " + e.blockedURI);
  });
  window.addEventListener("error", function (e) {
    report("error", String(e.message) + " at " + e.filename + ":" + e.lineno);
  });

  function typing(t) {
    return t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName));
  }

  // Irreversible actions ask first.
  document.addEventListener("click", function (e) {
    var b = e.target.closest && e.target.closest("button.danger");
    if (b && !window.confirm(b.getAttribute("data-confirm") || b.textContent.trim() + "?")) {
      e.preventDefault();
    }
  }, true);

  // Lists: j/k move, Enter opens, x selects.
  var current = -1;
  function rows() { return Array.prototype.slice.call(document.querySelectorAll("[data-row]")); }
  function move(d) {
    var r = rows();
    if (!r.length) return;
    if (current >= 0 && r[current]) r[current].classList.remove("current");
    current = Math.max(0, Math.min(r.length - 1, current + d));
    r[current].classList.add("current");
    r[current].setAttribute("aria-selected", "true");
    var link = r[current].querySelector("[data-open]") || r[current].querySelector("a");
    if (link) link.focus({ preventScroll: false });
  }

  var pendingG = false;
  document.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey) && e.target.matches && e.target.matches("textarea[data-ctrl-enter]")) {
      e.preventDefault();
      if (e.target.form) e.target.form.requestSubmit();
      return;
    }
    if (typing(e.target) || e.altKey || e.ctrlKey || e.metaKey) return;
    var k = e.key;
    if (pendingG) {
      pendingG = false;
      var go = document.querySelector('[data-key="g ' + k + '"]');
      if (go) { e.preventDefault(); go.click(); }
      return;
    }
    if (k === "g") { pendingG = true; return; }
    if (k === "j") { e.preventDefault(); move(1); return; }
    if (k === "k") { e.preventDefault(); move(-1); return; }
    if (k === "x") {
      var r = rows()[current];
      var box = r && r.querySelector("input[type=checkbox]");
      if (box) { e.preventDefault(); box.checked = !box.checked; }
      return;
    }
    if (k === "Enter" && current >= 0) {
      var row = rows()[current];
      var open = row && row.querySelector("[data-open]");
      if (open && document.activeElement !== open) { e.preventDefault(); open.click(); }
      return;
    }
    if (k === "/") {
      var s = document.querySelector("[data-search]") || document.querySelector("[role=search] input");
      if (s) { e.preventDefault(); s.focus(); s.select && s.select(); }
      return;
    }
    if (k === "?") {
      var h = document.getElementById("help");
      if (h && h.showModal) { e.preventDefault(); h.showModal(); }
      return;
    }
    var keyed = document.querySelector('[data-key="' + k + '"]');
    if (keyed) { e.preventDefault(); keyed.click(); }
  });

  // The spend chart (uPlot), from JSON embedded in the page.
  function chart() {
    var host = document.querySelector("[data-chart]");
    if (!host || typeof uPlot === "undefined") return;
    var data;
    try { data = JSON.parse(document.getElementById(host.getAttribute("data-chart")).textContent); }
    catch (e) { return; }
    if (!data || !data.series || !data.series.length) {
      host.textContent = host.getAttribute("data-empty") || "—";
      return;
    }
    var palette = ["#2563eb", "#16a34a", "#d97706", "#9333ea", "#0891b2", "#be123c"];
    var cols = [data.x];
    var series = [{}];
    data.series.forEach(function (s, i) {
      cols.push(s.values);
      series.push({ label: s.name + (s.currencies.length ? " (" + s.currencies.join(", ") + ")" : ""),
        stroke: palette[i % palette.length], width: 1.5 });
    });
    var marks = function (u) {
      var ctx = u.ctx;
      ctx.save();
      data.series.forEach(function (s, i) {
        ctx.fillStyle = "#dc2626";
        s.anomalies.forEach(function (idx) {
          var cx = u.valToPos(data.x[idx], "x", true), cy = u.valToPos(s.values[idx], "y", true);
          ctx.beginPath(); ctx.arc(cx, cy, 4 * devicePixelRatio, 0, 2 * Math.PI); ctx.fill();
        });
      });
      ctx.strokeStyle = "#b91c1c";
      ctx.setLineDash([4, 4]);
      (data.markers || []).forEach(function (m) {
        var x = u.valToPos(m.t, "x", true);
        ctx.beginPath(); ctx.moveTo(x, u.bbox.top); ctx.lineTo(x, u.bbox.top + u.bbox.height); ctx.stroke();
      });
      ctx.restore();
    };
    var width = Math.max(300, host.clientWidth || 600);
    new uPlot({ width: width, height: 220, series: series, hooks: { draw: [marks] },
      axes: [{}, { size: 60 }], scales: { x: { time: true } } }, cols, host);
    host.setAttribute("data-ready", "1");
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", chart); else chart();
})();

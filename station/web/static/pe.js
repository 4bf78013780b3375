// The /pe page: keyboard-first. The code input keeps the focus so a USB barcode scanner's
// code + Enter always lands there; F6 confirm, F7 retest, F8 absent, F9 exempt act on the
// first current student. Each server event re-reads the page fragment; an unstable
// reading only updates its number, since it moves ten times a second.
(function () {
  var main = document.getElementById("pe-main");
  if (!main) { return; }
  var form = document.getElementById("pe-scan");
  var input = document.getElementById("pe-code");
  var message = document.getElementById("pe-message");
  var text = JSON.parse((document.getElementById("pe-text") || {}).textContent || "{}");
  var lang = document.documentElement.lang === "en" ? "en" : "zh";
  var sitting = form ? form.dataset.sitting : null;

  function say(doc, bad) {
    if (!message) { return; }
    message.textContent = doc ? (lang === "en" ? doc.en : doc.zh) || "" : "";
    message.className = "pe-message" + (bad ? " fail" : "");
  }

  function focusCode() { if (input && document.activeElement !== input) { input.focus(); } }

  var refreshing = false, again = false;
  function refresh() {
    if (refreshing) { again = true; return; }
    refreshing = true;
    fetch(main.dataset.refreshUrl, { headers: { "Accept": "text/html" } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) { if (html !== null) { main.innerHTML = html; } })
      .catch(function () {})
      .then(function () { refreshing = false; if (again) { again = false; refresh(); } });
  }

  function post(action, body) {
    body = body || {};
    if (sitting && !body.sitting) { body.sitting = sitting; }
    return fetch("/api/pe/" + action, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body)
    }).then(function (r) {
      return r.json().then(function (doc) {
        if (!r.ok) { say(doc, true); return null; }
        say(null); refresh(); return doc;
      });
    }).catch(function () { say({ zh: text.offline, en: text.offline }, true); return null; });
  }

  if (form) {
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      var code = input.value.trim();
      input.value = "";
      if (!code) { return; }
      var device = document.getElementById("pe-device");
      post("scan", { code: code, device: device ? device.value : "" }).then(focusCode);
    });
  }

  var openForm = function (e) {
    if (!e.target || e.target.id !== "pe-open") { return; }
    e.preventDefault();
    post("open", { item: document.getElementById("pe-item").value }).then(function (doc) {
      if (doc) { window.location.reload(); }
    });
  };
  document.addEventListener("submit", openForm);

  main.addEventListener("click", function (e) {
    var b = e.target.closest("[data-action]");
    if (!b) { return; }
    var action = b.dataset.action, body = {};
    if (b.dataset.attempt) { body.attempt = b.dataset.attempt; }
    if (b.dataset.code) { body.code = b.dataset.code; }
    if (b.dataset.device) { body.device = b.dataset.device; }
    if (b.dataset.reading) { body.reading = b.dataset.reading; }
    if (action === "correct") {
      body.value = window.prompt(text.ask_value); if (body.value === null) { return focusCode(); }
      body.reason = window.prompt(text.ask_reason); if (body.reason === null) { return focusCode(); }
    }
    if (action === "assign") {
      body.code = window.prompt(text.ask_code); if (!body.code) { return focusCode(); }
    }
    if (action === "close") {
      if (!window.confirm(text.confirm_close)) { return focusCode(); }
      post("close", { sitting: b.dataset.sitting }).then(function (doc) { if (doc) { window.location.reload(); } });
      return;
    }
    post(action, body).then(focusCode);
  });

  document.addEventListener("keydown", function (e) {
    if (!/^F[6-9]$/.test(e.key)) { return; }
    var b = main.querySelector('[data-key="' + e.key + '"]');
    if (b) { e.preventDefault(); b.click(); }
  });
  // A click elsewhere on the page must not leave the scanner typing into nothing.
  document.addEventListener("click", function (e) {
    if (!e.target.closest("input, select, textarea, a")) { setTimeout(focusCode, 0); }
  });

  if (main.dataset.events && window.EventSource) {
    var source = new EventSource(main.dataset.events);
    source.onmessage = function (m) {
      var ev = JSON.parse(m.data);
      if (ev.type === "live") {
        main.querySelectorAll("[data-live]").forEach(function (el) {
          if (el.dataset.live === ev.device) { el.textContent = ev.value + " " + ev.unit; el.classList.add("moving"); }
        });
        return;
      }
      if (ev.type === "closed") { window.location.reload(); return; }
      refresh();
    };
    source.onopen = function () { refresh(); };
  }
  focusCode();
})();

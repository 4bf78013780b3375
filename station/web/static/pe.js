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
  var text = qm.texts("pe-text");
  var lang = qm.lang;
  var sitting = form ? form.dataset.sitting : null;

  function say(doc, bad) {
    if (!message) { return; }
    message.textContent = doc ? (lang === "en" ? doc.en : doc.zh) || "" : "";
    message.className = "pe-message" + (bad ? " fail" : "");
  }

  // A click elsewhere on the page must not leave the scanner typing into nothing.
  var focusCode = qm.keepFocus(input);
  var refresh = qm.refresher(main);
  // A closed sitting's page shows its seal code for the proctor to copy onto the sheet.
  function showSealed(id) { window.location.href = "/pe?closed=" + encodeURIComponent(id); }

  function post(action, body) {
    body = body || {};
    if (sitting && !body.sitting) { body.sitting = sitting; }
    return qm.post("/api/pe/" + action, body, say, text.offline)
      .then(function (doc) { if (doc) { refresh(); } return doc; });
  }

  // A two-lane timer: the proctor scans the lane 1 runner, then the lane 2 runner; after
  // each scan the next lane is chosen, so two scans in a row fill both lanes.
  function laneChoice() {
    return document.querySelector('#pe-lanes input[name="lane"]:checked');
  }
  function nextLane() {
    var lanes = document.querySelectorAll('#pe-lanes input[name="lane"]');
    var now = laneChoice();
    if (!lanes.length || !now) { return; }
    var i = Array.prototype.indexOf.call(lanes, now);
    lanes[(i + 1) % lanes.length].checked = true;
  }
  document.querySelectorAll('#pe-lanes input[name="lane"]').forEach(function (r) {
    r.addEventListener("change", function () { focusCode(); });
  });

  qm.onScan(form, input, function (code) {
    var device = document.getElementById("pe-device");
    var lane = laneChoice();
    var body = { code: code, device: device ? device.value : "" };
    if (lane) { body.lane = lane.value; }
    post("scan", body).then(function (doc) {
      if (doc && lane) { nextLane(); }
      focusCode();
    });
  });

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
    if (b.dataset.item) { body.item = b.dataset.item; }
    if (b.dataset.lane) { body.lane = b.dataset.lane; }
    if (action === "correct") {
      body.value = window.prompt(text.ask_value); if (body.value === null) { return focusCode(); }
      body.reason = window.prompt(text.ask_reason); if (body.reason === null) { return focusCode(); }
    }
    if (action === "assign") {
      body.code = window.prompt(text.ask_code); if (!body.code) { return focusCode(); }
    }
    if (action === "close") {
      if (!window.confirm(text.confirm_close)) { return focusCode(); }
      post("close", { sitting: b.dataset.sitting }).then(function (doc) { if (doc) { showSealed(doc.sitting.id); } });
      return;
    }
    post(action, body).then(focusCode);
  });

  document.addEventListener("keydown", function (e) {
    if (!/^F[6-9]$/.test(e.key)) { return; }
    var b = main.querySelector('[data-key="' + e.key + '"]');
    if (b) { e.preventDefault(); b.click(); }
  });
  if (main.dataset.events) {
    qm.listen(main.dataset.events, function (ev) {
      if (ev.type === "live") {
        main.querySelectorAll("[data-live]").forEach(function (el) {
          if (el.dataset.live === ev.device) { el.textContent = ev.value + " " + ev.unit; el.classList.add("moving"); }
        });
        return;
      }
      if (ev.type === "closed") { showSealed(ev.sitting); return; }
      refresh();
    }, refresh);
  }
  focusCode();
})();

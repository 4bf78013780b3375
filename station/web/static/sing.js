// The /sing page: keyboard-first like /pe. The code input keeps the focus so a USB barcode
// scanner's code + Enter selects the student; Record, Stop and Retake post to the server,
// which records on its own thread. Level events (5 a second) move only the meter and the
// countdown; every other event re-reads the page fragment.
(function () {
  var main = document.getElementById("sing-main");
  if (!main) { return; }
  var form = document.getElementById("sing-scan");
  var input = document.getElementById("sing-code");
  var message = document.getElementById("sing-message");
  var recordButton = document.getElementById("sing-record");
  var stopButton = document.getElementById("sing-stop");
  var remaining = document.getElementById("sing-remaining");
  var fill = document.getElementById("sing-level-fill");
  var levelValue = document.getElementById("sing-level-value");
  var text = qm.texts("sing-text");
  var lang = qm.lang;

  function say(doc, bad) {
    if (!message) { return; }
    // Refusals come in both languages: the page's language first, the other below it.
    message.textContent = doc ? (lang === "en" ? [doc.en, doc.zh] : [doc.zh, doc.en]).filter(Boolean).join("\n") : "";
    message.className = "sing-message" + (bad ? " fail" : "");
  }

  // A click elsewhere must not leave the scanner typing into nothing; the buttons refocus
  // once their request is answered.
  var focusCode = qm.keepFocus(input, "input, select, textarea, a, [data-action]");
  var refresh = qm.refresher(main);

  function post(action, body) {
    return qm.post("/api/sing/" + action, body, say, text.offline)
      .then(function (doc) { if (doc) { refresh(); } return doc; });
  }

  function recording(on) {
    if (recordButton) { recordButton.disabled = on; }
    if (stopButton) { stopButton.disabled = !on; }
    if (!on) { showLevel(null); }
  }

  function showLevel(ev) {
    var db = ev ? ev.level_dbfs : -120;
    // -60 dBFS (nothing) … 0 dBFS (full scale) across the bar; red near clipping.
    var pct = Math.max(0, Math.min(100, (db + 60) / 60 * 100));
    if (fill) {
      fill.style.width = pct + "%";
      fill.className = "sing-level-fill" + (db > -3 ? " fail" : db > -40 ? " ok" : "");
      fill.parentNode.setAttribute("aria-valuenow", String(Math.max(-60, Math.round(db))));
    }
    if (levelValue) { levelValue.textContent = ev ? db.toFixed(0) + " dBFS" : "–"; }
    if (remaining) {
      remaining.textContent = ev && ev.remaining_s !== null && ev.remaining_s !== undefined
        ? String(Math.ceil(ev.remaining_s)) : "–";
    }
  }

  qm.onScan(form, input, function (code) { post("select", { code: code }).then(focusCode); });

  document.addEventListener("click", function (e) {
    var b = e.target.closest("[data-action]");
    if (!b) { return; }
    var action = b.dataset.action;
    if (action === "record") {
      recording(true);
      say({ zh: text.recording, en: text.recording });
      post("record", {}).then(function (doc) { if (!doc) { recording(false); } focusCode(); });
    } else if (action === "stop") {
      say({ zh: text.busy_stop, en: text.busy_stop });
      post("stop", {}).then(focusCode);
    } else if (action === "open") {
      post("open", {}).then(function (doc) { if (doc) { window.location.reload(); } });
    } else if (action === "close") {
      if (!window.confirm(text.confirm_close)) { return focusCode(); }
      post("close", { sitting: b.dataset.sitting }).then(function (doc) {
        if (doc) { window.location.href = "/sing?closed=" + encodeURIComponent(doc.sitting.id); }
      });
    }
  });

  qm.listen("/api/sing/events", function (ev) {
    if (ev.type === "level") { recording(true); showLevel(ev); return; }
    if (ev.type === "started") { recording(true); }
    if (ev.type === "done") {
      recording(false);
      say(ev.error || null, !!ev.error);
    }
    if (ev.type === "opened") { window.location.reload(); return; }
    if (ev.type === "closed") { window.location.href = "/sing?closed=" + encodeURIComponent(ev.sitting); return; }
    refresh();
  }, refresh);
  focusCode();
})();

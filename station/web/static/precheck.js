// The /precheck page: start a run, show each check as it finishes, the overall at the end,
// and the microphone level between runs. One event stream carries all three; the server
// sends the current state first, so a page opened (or reconnected) mid-run catches up.
(function () {
  var form = document.getElementById("pc-form");
  if (!form) { return; }
  var text = qm.texts("pc-text");
  var lang = qm.lang;
  var start = document.getElementById("pc-start");
  var network = document.getElementById("pc-network");
  var message = document.getElementById("pc-message");
  var progress = document.getElementById("pc-progress");
  var results = document.getElementById("pc-results");
  var overall = document.getElementById("pc-overall");
  var level = document.getElementById("pc-level");
  var fill = document.getElementById("pc-level-fill");
  var levelValue = document.getElementById("pc-level-value");
  var levelNote = document.getElementById("pc-level-note");
  var reports = document.getElementById("pc-reports");
  var FLOOR = -80;

  function pick(doc, key) { return doc[key + "_" + lang] || doc[key + "_zh"] || ""; }
  function words(doc) { return (lang === "en" ? doc.en : doc.zh) || doc.zh || ""; }
  function say(s, bad) { message.textContent = s || ""; message.className = "pc-message" + (bad ? " fail" : ""); }
  function el(tag, cls, content) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (content) { e.textContent = content; }
    return e;
  }

  function running(on) {
    start.disabled = on;
    network.disabled = on;
    progress.textContent = on ? text.running + " " + text.count.replace("{n}", results.children.length) : "";
  }

  function clear() {
    results.textContent = "";
    overall.hidden = true;
    overall.textContent = "";
  }

  function addCheck(c) {
    // Text only (textContent): summaries name devices and addresses, never markup.
    var li = el("li", "pc-line " + c.status);
    li.dataset.id = c.id;
    var head = el("div", "pc-line-head");
    head.appendChild(el("span", "pc-badge " + c.status, pick(c, "status")));
    head.appendChild(el("strong", "pc-name", pick(c, "title")));
    li.appendChild(head);
    li.appendChild(el("div", "pc-summary", pick(c, "summary")));
    var fix = pick(c, "fix");
    if (fix) { li.appendChild(el("div", "pc-fix", text.fix + fix)); }
    results.appendChild(li);
    running(true);
  }

  function showDone(d, quiet) {
    running(false);
    overall.className = "pc-overall " + d.overall;
    overall.textContent = pick(d, "overall");
    if (d.report_id) {
      var a = el("a", "button pc-open", text.open_report);
      a.href = "/precheck/reports/" + d.report_id;
      a.target = "_blank";
      a.rel = "noopener";
      overall.appendChild(document.createTextNode(" "));
      overall.appendChild(a);
    }
    if (d.waiting) { overall.appendChild(el("div", "pc-waiting", text.waiting.replace("{n}", d.waiting))); }
    overall.hidden = false;
    if (quiet) { return; }
    overall.focus();
    refreshReports();
  }

  function refreshReports() { qm.fragment(reports, reports.dataset.refreshUrl); }   // or the next run does

  function showLevel(ev) {
    if (ev.paused) { levelNote.textContent = text.paused; setBar(null); return; }
    if (ev.error) {
      levelNote.textContent = words({ zh: ev.zh + " " + ev.fix_zh, en: ev.en + " " + ev.fix_en });
      levelNote.className = "fail";
      setBar(null);
      return;
    }
    levelNote.textContent = text.listening;
    levelNote.className = "muted";
    setBar(ev.dbfs);
  }

  function setBar(db) {
    if (db === null || db === undefined) {
      fill.style.width = "0";
      levelValue.textContent = "–";
      level.setAttribute("aria-valuenow", FLOOR);
      return;
    }
    var shown = Math.max(FLOOR, Math.min(0, db));
    fill.style.width = (100 * (shown - FLOOR) / -FLOOR).toFixed(1) + "%";
    fill.className = "pc-level-fill" + (db > -3 ? " fail" : db > -50 ? " ok" : "");
    levelValue.textContent = db.toFixed(1);
    level.setAttribute("aria-valuenow", shown.toFixed(0));
    level.setAttribute("aria-valuetext", db.toFixed(1) + " dBFS");
  }

  function onEvent(ev) {
    if (ev.type === "state") {
      clear();
      ev.checks.forEach(addCheck);
      if (ev.running) { running(true); } else { running(false); if (ev.last && ev.checks.length) { showDone(ev.last, true); } }
    } else if (ev.type === "started") {
      clear(); say(""); running(true);
    } else if (ev.type === "check") {
      addCheck(ev);
    } else if (ev.type === "done") {
      showDone(ev);
    } else if (ev.type === "level") {
      showLevel(ev);
    }
  }

  form.addEventListener("submit", function (e) {
    e.preventDefault();
    say("");
    start.disabled = true;
    qm.post("/api/precheck/run", { network: network.checked }, function (doc, bad) {
      if (bad) { say(words(doc), true); start.disabled = false; }
    }, text.offline);
  });

  var source = qm.listen("/api/precheck/events", onEvent);
  if (source) {
    source.onerror = function () { if (start.disabled) { say(text.offline, true); } };
    source.onopen = function () { if (message.textContent === text.offline) { say(""); } };
    // Leaving the page closes the stream at once, so the station closes the microphone.
    window.addEventListener("pagehide", function () { source.close(); });
  }
})();

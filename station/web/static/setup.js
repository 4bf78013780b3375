// The set-up page (/setup): the station's id, collector, headset and PE devices, saved as
// one JSON body through qm.post; a test tone, a live microphone level and each device's
// live reading while the teacher checks them.
(function () {
  var lang = qm.lang, text = qm.texts("setup-text");
  var $ = function (id) { return document.getElementById(id); };
  var rows = $("device-rows"), rowTemplate = $("device-row");

  function words(doc) { return doc ? (doc[lang] || doc.zh || "") : ""; }
  // A say() for qm.post that writes into el (bad: a refusal, shown as one).
  function sayer(el) {
    return function (doc, bad) { el.textContent = words(doc); el.classList.toggle("fail", !!bad); el.classList.toggle("ok", !bad && !!doc); };
  }
  function tell(el, words_, bad) { sayer(el)({ zh: words_, en: words_ }, bad); }

  // --- the PE device rows ---------------------------------------------------------------
  function field(row, name) { return row.querySelector('[data-field="' + name + '"]'); }
  function addRow(device) {
    var row = rowTemplate.content.firstElementChild.cloneNode(true);
    device = device || {};
    ["name", "port", "driver", "item", "baud"].forEach(function (k) {
      if (device[k] !== undefined && device[k] !== null) { field(row, k).value = String(device[k]); }
    });
    if (!device.name) { field(row, "name").value = "device-" + (rows.children.length + 1); }
    rows.appendChild(row);
    return row;
  }
  function deviceOf(row) {
    var d = {};
    ["name", "port", "driver", "item", "baud"].forEach(function (k) { d[k] = field(row, k).value.trim(); });
    return d;
  }

  // A row's live reading: the port is read by the station until stopped (or 20 s unasked).
  function showReading(row, view) {
    var cell = row.querySelector(".device-reading"), r = (view.readings || [])[0];
    if (view.status === "connected" && r) {
      cell.textContent = r.value_text + " " + (r.unit || "") + " · " + (r.stable ? text.stable : text.unstable)
        + (r.code ? " · " + r.code : "");
      cell.dataset.state = "reading";
    } else {
      cell.textContent = view.status === "connected" ? text.no_reading : words(view);
      cell.dataset.state = view.status;
    }
    cell.classList.toggle("fail", view.status === "disconnected");
  }
  function stopWatch(row, tellServer) {
    var button = row.querySelector('[data-act="watch"]');
    if (row._timer) { clearTimeout(row._timer); row._timer = null; }
    button.setAttribute("aria-pressed", "false");
    button.textContent = text.watch;
    if (tellServer && row._port) { qm.post("/api/setup/device/unwatch", { port: row._port }, function () {}); }
    row._port = null;
  }
  function watch(row) {
    var cell = row.querySelector(".device-reading"), d = deviceOf(row);
    if (!d.port) { tell(cell, text.need_port, true); field(row, "port").focus(); return; }
    d.n = Array.prototype.indexOf.call(rows.children, row) + 1;
    qm.post("/api/setup/device/watch", d, sayer(cell), text.offline).then(function (view) {
      if (!view) { return; }
      var button = row.querySelector('[data-act="watch"]');
      row._port = d.port;
      button.setAttribute("aria-pressed", "true");
      button.textContent = text.unwatch;
      showReading(row, view);
      (function poll() {
        row._timer = setTimeout(function () {
          fetch("/api/setup/device/watch?port=" + encodeURIComponent(d.port), { headers: { "Accept": "application/json" } })
            .then(function (r) { return r.json().then(function (doc) { return { ok: r.ok, doc: doc }; }); })
            .then(function (a) {
              if (row._port !== d.port) { return; }
              if (!a.ok || a.doc.status === "stopped") { sayer(cell)(a.doc, true); stopWatch(row, false); return; }
              showReading(row, a.doc); poll();
            })
            .catch(function () { if (row._port === d.port) { tell(cell, text.offline, true); poll(); } });
        }, 700);
      })();
    });
  }
  rows.addEventListener("click", function (e) {
    var b = e.target.closest("button[data-act]");
    if (!b) { return; }
    var row = b.closest("tr");
    if (b.dataset.act === "remove") {
      stopWatch(row, true);
      var next = row.nextElementSibling || row.previousElementSibling;
      row.remove();
      (next ? next.querySelector("input") : $("add-device")).focus();
    } else if (row._port) {
      stopWatch(row, true);
    } else {
      watch(row);
    }
  });
  // A changed port, driver or baud makes the running watch stale.
  rows.addEventListener("change", function (e) {
    var row = e.target.closest("tr");
    if (row && row._port && e.target.dataset.field !== "name" && e.target.dataset.field !== "item") { stopWatch(row, true); watch(row); }
  });
  $("add-device").addEventListener("click", function () { field(addRow(), "port").focus(); });
  JSON.parse($("setup-devices").textContent || "[]").forEach(addRow);

  // --- the collector ------------------------------------------------------------------------
  $("collector-check").addEventListener("click", function () {
    var msg = $("collector-msg");
    tell(msg, text.checking, false);
    qm.post("/api/setup/collector", { collector_url: $("collector_url").value, token: $("token").value,
                                      station_id: $("station_id").value }, sayer(msg), text.offline)
      .then(function (doc) { if (doc) { sayer(msg)(doc, false); } });
  });

  // Enter in the code field pairs (elsewhere in the form it saves).
  $("pairing_code").addEventListener("keydown", function (e) {
    if (e.key === "Enter") { e.preventDefault(); $("pair").click(); }
  });
  $("pair").addEventListener("click", function () {
    var msg = $("collector-msg");
    tell(msg, text.checking, false);
    qm.post("/api/setup/pair", { collector_url: $("collector_url").value, code: $("pairing_code").value },
            sayer(msg), text.offline).then(function (doc) {
      if (!doc) { return; }
      $("station_id").value = doc.station_id;
      if (doc.school) { $("school").value = doc.school; }
      if (doc.room) { $("room").value = doc.room; }
      $("token").value = "";
      $("token").placeholder = text.token_kept;
      $("pairing_code").value = "";
      sayer(msg)(doc, false);
    });
  });

  // --- the headset --------------------------------------------------------------------------
  var headsetMsg = $("headset-msg");
  $("tone").addEventListener("click", function () {
    qm.post("/api/setup/tone", { output: $("audio_output").value }, sayer(headsetMsg), text.offline).then(function (doc) {
      if (doc) { tell(headsetMsg, text.tone_played.replace("{device}", doc.device), false); }
    });
  });
  var listening = false, levelButton = $("level-toggle");
  function showLevel(dbfs) {
    var shown = Math.max(-80, Math.min(0, dbfs));
    $("level-fill").style.width = (100 * (shown + 80) / 80) + "%";
    $("level").setAttribute("aria-valuenow", String(Math.round(shown)));
    $("level-value").textContent = dbfs.toFixed(1);
  }
  function listen() {
    if (!listening) { return; }
    fetch("/api/setup/level?input=" + encodeURIComponent($("audio_input").value), { headers: { "Accept": "application/json" } })
      .then(function (r) { return r.json().then(function (doc) { return { ok: r.ok, doc: doc }; }); })
      .then(function (a) {
        if (!listening) { return; }
        if (!a.ok) { sayer(headsetMsg)(a.doc, true); setTimeout(listen, 2000); return; }
        showLevel(a.doc.dbfs);
        if (!headsetMsg.dataset.device || headsetMsg.dataset.device !== a.doc.device) {
          headsetMsg.dataset.device = a.doc.device;
          tell(headsetMsg, text.listening.replace("{device}", a.doc.device), false);
        }
        setTimeout(listen, 100);
      })
      .catch(function () { tell(headsetMsg, text.offline, true); setTimeout(listen, 2000); });
  }
  levelButton.addEventListener("click", function () {
    listening = !listening;
    levelButton.setAttribute("aria-pressed", String(listening));
    levelButton.textContent = listening ? text.level_stop : text.level_start;
    delete headsetMsg.dataset.device;
    listen();
  });
  function fillSelect(select, names) {
    var keep = select.value;
    select.textContent = "";
    [""].concat(names).forEach(function (name) {
      var o = document.createElement("option");
      o.value = name; o.textContent = name || text.system_default;
      select.appendChild(o);
    });
    select.value = names.indexOf(keep) >= 0 ? keep : "";
  }
  $("rescan").addEventListener("click", function () {
    fetch("/api/setup/options?rescan=1", { headers: { "Accept": "application/json" } })
      .then(function (r) { return r.json(); })
      .then(function (o) {
        fillSelect($("audio_input"), o.inputs); fillSelect($("audio_output"), o.outputs);
        var list = $("serial-ports");
        list.textContent = "";
        o.serial.forEach(function (p) {
          var opt = document.createElement("option");
          opt.value = p.port; opt.textContent = p.description || "";
          list.appendChild(opt);
        });
        tell(headsetMsg, text.rescanned, false);
      })
      .catch(function () { tell(headsetMsg, text.offline, true); });
  });

  // --- saving ---------------------------------------------------------------------------------
  $("setup-form").addEventListener("submit", function (e) {
    e.preventDefault();
    var msg = $("save-msg");
    Array.prototype.forEach.call(rows.children, function (row) { stopWatch(row, true); });
    var body = { station_id: $("station_id").value, school: $("school").value, room: $("room").value,
                 collector_url: $("collector_url").value, token: $("token").value,
                 audio_input: $("audio_input").value, audio_output: $("audio_output").value,
                 devices: Array.prototype.map.call(rows.children, deviceOf) };
    qm.post("/api/setup/save", body, sayer(msg), text.offline).then(function (doc) {
      if (!doc) { msg.focus && $("save").focus(); return; }
      tell(msg, text.saved, false);
      $("token").value = "";
      var shown = document.querySelector(".top .station");
      if (shown) { shown.textContent = shown.textContent.replace(/\S+$/, doc.station_id); }
    });
  });
})();

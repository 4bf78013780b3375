// Shared page behaviour, and `window.qm`: what the live pages (/pe, /sing, /precheck) do
// alike. Elements with data-refresh="URL" data-every="SECONDS" replace their content with
// that URL's HTML fragment, so a page stays current without a reload.
(function () {
  var lang = document.documentElement.lang === "en" ? "en" : "zh";

  // The JSON a page's <script type="application/json" id=...> carries (its texts), or {}.
  function texts(id) {
    return JSON.parse((document.getElementById(id) || {}).textContent || "{}");
  }

  // Replace el's content with url's HTML fragment; a failed fetch keeps the last view
  // (the station may be restarting). A keyboard user's focus inside el stays on the same
  // control (by its place among el's controls), not thrown back to the top of the page.
  var CONTROLS = "a[href], button, input, select, textarea, summary, [tabindex]";
  function fragment(el, url) {
    return fetch(url, { headers: { "Accept": "text/html" } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (html === null) { return; }
        var had = el.contains(document.activeElement)
          ? Array.prototype.indexOf.call(el.querySelectorAll(CONTROLS), document.activeElement) : -1;
        el.innerHTML = html;
        var again = had >= 0 ? el.querySelectorAll(CONTROLS)[had] : null;
        if (again) { again.focus({ preventScroll: true }); }
      })
      .catch(function () {});
  }

  // A refresh() for el's data-refresh-url: calls that come while one is under way are
  // folded into a single one after it, so a burst of events costs two fetches, not many.
  function refresher(el) {
    var refreshing = false, again = false;
    function refresh() {
      if (refreshing) { again = true; return; }
      refreshing = true;
      fragment(el, el.dataset.refreshUrl)
        .then(function () { refreshing = false; if (again) { again = false; refresh(); } });
    }
    return refresh;
  }

  // The barcode input keeps the focus, so a USB scanner's code + Enter always lands there:
  // returns focus(), and refocuses after a click on anything but `spare` (fields, links).
  function keepFocus(input, spare) {
    function focus() { if (input && document.activeElement !== input) { input.focus(); } }
    document.addEventListener("click", function (e) {
      if (!e.target.closest(spare || "input, select, textarea, a")) { setTimeout(focus, 0); }
    });
    return focus;
  }

  // A scanned code (trimmed, the input emptied for the next one) goes to onCode.
  function onScan(form, input, onCode) {
    if (!form) { return; }
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      var code = input.value.trim();
      input.value = "";
      if (code) { onCode(code); }
    });
  }

  // POST body as JSON: the one way a page writes (the station refuses any other write, and
  // any from another origin). Resolves to the answer, or null once say(refusal, true) has
  // shown why not (say(null) clears the message on success). A lapsed session goes back to
  // the login page; a write before the proctor signed in asks for their name.
  function post(url, body, say, offline) {
    return fetch(url, {
      method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body || {})
    }).then(function (r) {
      return r.json().then(function (doc) {
        if (!r.ok) {
          if (doc.error === "login_required") {
            location.assign("/login?next=" + encodeURIComponent(location.pathname + location.search));
          }
          if (doc.error === "proctor_required") { askProctor(); }
          say(doc, true); return null;
        }
        say(null); return doc;
      });
    }).catch(function () { say({ zh: offline, en: offline }, true); return null; });
  }

  // The proctor's sign-in at the top of every page: the name goes into the session, and
  // every write is recorded under it. "Change" lets the next proctor sign in.
  var proctorForm = document.getElementById("qm-proctor");
  function askProctor() {
    if (!proctorForm) { return; }
    proctorForm.hidden = false;
    proctorForm.querySelector("input").focus();
  }
  if (proctorForm) {
    var proctorSay = function (doc) {
      var msg = proctorForm.querySelector(".proctor-message");
      msg.hidden = !doc;
      if (doc) { msg.textContent = doc[lang] || doc.zh; }
    };
    proctorForm.addEventListener("submit", function (e) {
      e.preventDefault();
      post("/api/proctor", { name: proctorForm.querySelector("input").value }, proctorSay, proctorForm.dataset.offline)
        .then(function (doc) { if (doc) { location.reload(); } });
    });
    var change = document.getElementById("qm-proctor-change");
    if (change) { change.addEventListener("click", askProctor); }
  }

  // The server's events, parsed, to onEvent; onOpen on each (re)connect. Null where the
  // browser has no EventSource.
  function listen(url, onEvent, onOpen) {
    if (!window.EventSource) { return null; }
    var source = new EventSource(url);
    source.onmessage = function (m) { onEvent(JSON.parse(m.data)); };
    if (onOpen) { source.onopen = onOpen; }
    return source;
  }

  window.qm = { lang: lang, texts: texts, fragment: fragment, refresher: refresher,
                keepFocus: keepFocus, onScan: onScan, post: post, listen: listen };

  document.querySelectorAll("[data-refresh]").forEach(function (el) {
    var every = 1000 * (parseFloat(el.dataset.every) || 5);
    setInterval(function () { fragment(el, el.dataset.refresh); }, every);
  });

  strip(document.getElementById("qm-strip"));

  // The status strip under the header: the open sittings, the headset, the PE devices'
  // lights and the upload queue, from /api/status (embedded in the page for the first
  // paint, then polled). Each item carries data-state for its icon's shape and colour,
  // and says the same in words. The DOM changes only when the status does, so a screen
  // reader hears a change, not every poll.
  function strip(root) {
    if (!root) { return; }
    var text = texts("strip-text");
    var page = document.body.dataset.page;
    var shown = "";
    var RANK = { ok: 0, warn: 1, off: 1, fail: 2 };
    var offline = document.getElementById("strip-offline");

    function fill(id, state, words) {
      var item = document.getElementById(id);
      item.hidden = state === null;
      if (state === null) { return item; }
      item.dataset.state = state;
      item.querySelector(".strip-text").textContent = words;
      return item;
    }

    function sittings(doc) {
      var open = doc.open_sittings || [];
      if (!open.length) { return fill("strip-sitting", "none", text.sitting_none); }
      fill("strip-sitting", "open", text.sitting_open.replace("{list}", open.map(function (s) {
        return s.id + " " + ((s.title || {})[lang] || s.kind);
      }).join(lang === "zh" ? "；" : "; ")));
    }

    function headset(doc) {
      // The headset matters where singing happens: not a red light on a PE laptop.
      var singing = (doc.open_sittings || []).some(function (s) { return s.kind === "singing"; });
      var h = doc.headset || {};
      if (!singing && page !== "sing" && page !== "precheck") { return fill("strip-headset", null); }
      if (h.connected === null || h.connected === undefined) { return fill("strip-headset", "unknown", text.headset_checking); }
      fill("strip-headset", h.connected ? "ok" : "fail", h.connected ? text.headset_ok : text.headset_missing);
    }

    function peDevices(doc) {
      var devices = doc.pe_devices || [], item = document.getElementById("strip-pe");
      item.hidden = !devices.length;
      var list = item.querySelector(".strip-devices"), worst = 0;
      list.textContent = "";
      devices.forEach(function (d) {
        var light = d.light || "warn";
        worst = Math.max(worst, light in RANK ? RANK[light] : 1);
        var dev = document.createElement("span");
        dev.className = "strip-dev";
        dev.dataset.device = d.name;
        dev.dataset.state = light;
        var icon = document.createElement("span");
        icon.className = "strip-icon";
        icon.setAttribute("aria-hidden", "true");
        dev.appendChild(icon);
        dev.appendChild(document.createTextNode(d.name + " " + (text["device_" + light] || d.status)));
        list.appendChild(dev);
      });
      item.dataset.state = ["ok", "warn", "fail"][worst];
    }

    function uploads(doc) {
      var u = doc.uploads || {}, words = [], state = "empty";
      if (u.pending) { words.push(text.uploads_pending.replace("{n}", u.pending)); state = "pending"; }
      if (u.failed) { words.push(text.uploads_failed.replace("{n}", u.failed)); state = "failed"; }
      if (!words.length) {
        words.push(u.done ? text.uploads_done.replace("{n}", u.done) : text.uploads_empty);
        state = u.done ? "done" : "empty";
      }
      if ((u.pending || u.failed) && !u.configured) { words.push(text.not_configured); }
      var item = fill("strip-uploads", state, words.join(" · "));
      item.dataset.pending = String(u.pending || 0);
      item.dataset.failed = String(u.failed || 0);
    }

    function show(doc) {
      var seen = JSON.stringify([doc.open_sittings, doc.headset, doc.pe_devices, doc.uploads]);
      offline.hidden = true;
      if (seen === shown) { return; }
      shown = seen;
      sittings(doc); headset(doc); peDevices(doc); uploads(doc);
    }

    function poll() {
      if (document.hidden) { return; }
      fetch("/api/status", { headers: { "Accept": "application/json" } })
        .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
        .then(show)
        .catch(function () { offline.hidden = false; });
    }

    show(texts("strip-data"));
    setInterval(poll, 1000 * (parseFloat(root.dataset.every) || 3));
    document.addEventListener("visibilitychange", poll);
  }
})();

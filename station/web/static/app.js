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
  // (the station may be restarting).
  function fragment(el, url) {
    return fetch(url, { headers: { "Accept": "text/html" } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) { if (html !== null) { el.innerHTML = html; } })
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

  // POST body as JSON; resolves to the answer, or null once say(refusal, true) has shown
  // why not (say(null) clears the message on success).
  function post(url, body, say, offline) {
    return fetch(url, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body || {})
    }).then(function (r) {
      return r.json().then(function (doc) {
        if (!r.ok) { say(doc, true); return null; }
        say(null); return doc;
      });
    }).catch(function () { say({ zh: offline, en: offline }, true); return null; });
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
})();

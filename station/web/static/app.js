// Shared page behaviour. Elements with data-refresh="URL" data-every="SECONDS" replace
// their content with that URL's HTML fragment, so a page stays current without a reload.
(function () {
  document.querySelectorAll("[data-refresh]").forEach(function (el) {
    var every = 1000 * (parseFloat(el.dataset.every) || 5);
    setInterval(function () {
      fetch(el.dataset.refresh, { headers: { "Accept": "text/html" } })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) { if (html !== null) { el.innerHTML = html; } })
        .catch(function () { /* the station may be restarting: keep the last view */ });
    }, every);
  });
})();

// The /uploads page: "retry now" posts through qm.post (JSON, like every write) and says
// what happened; the cards refresh every few seconds, so the file lists the user opened
// are reopened after each refresh.
(function () {
  var root = document.getElementById("uploads"), open = {};
  if (!root) { return; }
  var text = window.qm.texts("uploads-text"), message = document.getElementById("uploads-message");

  function say(doc, failed) {
    message.hidden = !doc;
    message.classList.toggle("fail", !!failed);
    if (doc) { message.textContent = doc[window.qm.lang] || doc.zh; }
  }

  root.addEventListener("click", function (e) {
    var button = e.target.closest("button[data-retry]");
    if (!button) { return; }
    var sitting = button.dataset.retry;
    button.disabled = true;
    window.qm.post("/api/uploads/" + encodeURIComponent(sitting) + "/retry", {}, say, text.offline)
      .then(function (doc) {
        if (doc) {
          var words = text.retry_ok.replace("{sitting}", sitting);
          say({ zh: words, en: words });
        }
        window.qm.fragment(root, root.dataset.refresh);
      });
  });

  root.addEventListener("toggle", function (e) { open[e.target.dataset.sitting] = e.target.open; }, true);
  new MutationObserver(function () {
    root.querySelectorAll("details[data-sitting]").forEach(function (d) {
      if (open[d.dataset.sitting]) { d.open = true; }
    });
  }).observe(root, { childList: true });
})();

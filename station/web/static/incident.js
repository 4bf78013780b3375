// The incident form: sent as JSON through qm.post (the station's own origin); once filed,
// the page reloads to list it, with the confirmation kept in the address.
(function () {
  var form = document.getElementById("incident-form");
  if (!form) { return; }
  var message = document.getElementById("incident-message");
  var text = qm.texts("incident-text-json");
  var lang = qm.lang;

  function say(doc, bad) {
    message.textContent = doc ? (lang === "en" ? doc.en : doc.zh) || "" : "";
    message.className = bad ? "fail" : "";
  }

  var filed = new URLSearchParams(location.search).get("filed");
  if (filed) { say({ zh: text.filed.replace("{id}", filed), en: text.filed.replace("{id}", filed) }); }

  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var category = form.querySelector("input[name=category]:checked");
    if (!category) { say({ zh: text.choose, en: text.choose }, true); return; }
    if (!form.elements.text.value.trim()) {
      say({ zh: text.empty, en: text.empty }, true); form.elements.text.focus(); return;
    }
    var button = form.querySelector("button[type=submit]");
    button.disabled = true;
    qm.post("/api/incidents", {
      category: category.value, sitting: form.elements.sitting.value,
      students: form.elements.students.value, text: form.elements.text.value,
      action: form.elements.action.value
    }, say, text.offline).then(function (doc) {
      button.disabled = false;
      if (doc) { location.href = "/incidents?filed=" + encodeURIComponent(doc.station + "-" + doc.id); }
    });
  });
})();

// The roster page (/roster): the chosen file goes to the station as JSON, its bytes
// base64-encoded (every write from a page is JSON through qm.post); bad rows come back one
// by one, in the page's language with the other beneath.
(function () {
  var lang = qm.lang, text = qm.texts("roster-text");
  var form = document.getElementById("roster-form"), input = document.getElementById("roster-file");
  var msg = document.getElementById("roster-msg"), table = document.getElementById("roster-errors");

  function say(doc, bad) {
    msg.textContent = doc ? (doc[lang] || doc.zh) : "";
    msg.classList.toggle("fail", !!bad);
    msg.classList.toggle("ok", !bad && !!doc);
  }
  function showErrors(errors) {
    var body = table.querySelector("tbody");
    body.textContent = "";
    (errors || []).forEach(function (e) {
      var tr = document.createElement("tr");
      [String(e.row), lang === "zh" ? e.field_zh : e.field].forEach(function (t) {
        var td = document.createElement("td"); td.textContent = t; tr.appendChild(td);
      });
      var td = document.createElement("td");
      td.textContent = lang === "zh" ? e.zh : e.en;
      var other = document.createElement("small");
      other.className = "muted";
      other.textContent = " " + (lang === "zh" ? e.en : e.zh);
      td.appendChild(other);
      tr.appendChild(td);
      body.appendChild(tr);
    });
    table.hidden = !(errors || []).length;
  }
  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var file = input.files[0];
    if (!file) { say({ zh: text.choose, en: text.choose }, true); input.focus(); return; }
    say({ zh: text.reading, en: text.reading }, false);
    var reader = new FileReader();
    reader.onload = function () {
      var content = String(reader.result).split(",", 2)[1] || "";
      qm.post("/api/roster/import", { filename: file.name, content_base64: content,
                                      skip_bad: document.getElementById("skip-bad").checked }, say, text.offline)
        .then(function (doc) {
          if (!doc) { showErrors([]); return; }
          say(doc, !doc.imported);
          showErrors(doc.errors);
          document.getElementById("roster-count").textContent = String(doc.count);
          if (!doc.imported) { msg.setAttribute("tabindex", "-1"); msg.focus(); }
        });
    };
    reader.readAsDataURL(file);
  });
})();

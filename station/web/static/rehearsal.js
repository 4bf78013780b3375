// Rehearsal controls: each button posts its action and shows what happened, in the page's language.
(function () {
  const panel = document.querySelector(".rehearsal-panel");
  if (!panel) return;
  const zh = document.documentElement.lang.startsWith("zh");
  const message = panel.querySelector(".rehearsal-message");
  const fill = (text, values) => text.replace(/\{(\w+)\}/g, (m, k) => (k in values ? values[k] : m));
  const show = (text) => { if (message) message.textContent = text; };

  function markPlugged(device) {
    const cell = panel.querySelector(`[data-device-row="${device.name}"] .plug-state`);
    if (!cell) return;
    cell.dataset.plugged = device.plugged ? "yes" : "no";
    cell.textContent = device.plugged ? panel.dataset.wordPlugged : panel.dataset.wordUnplugged;
  }

  // Through the pages' one writer (app.js qm.post): JSON, same origin.
  async function post(url, body) {
    let refusal = null;
    const data = await window.qm.post(url, body, (doc) => { refusal = doc; }, panel.dataset.msgFailed);
    if (data === null) throw new Error((refusal && (zh ? refusal.zh : refusal.en)) || panel.dataset.msgFailed);
    return data;
  }

  panel.addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-action]");
    if (!button) return;
    const action = button.dataset.action;
    const name = button.dataset.device;
    button.disabled = true;
    try {
      if (action === "sing") {
        const data = await post("/api/rehearsal/sing", {kind: button.dataset.kind});
        show(fill(panel.dataset.msgSung, {seconds: data.seconds}));
      } else {
        const input = panel.querySelector(`[data-code-for="${name}"]`);
        const body = action === "measure" && input && input.value.trim() ? {code: input.value.trim()} : {};
        const data = await post(`/api/rehearsal/devices/${encodeURIComponent(name)}/${action}`, body);
        markPlugged(data.device);
        const unheard = data.reading && data.reading.heard === false;
        const key = unheard ? "msgUnheard" : {measure: "msgMeasured", unplug: "msgUnplugged", plug: "msgPlugged"}[action];
        show(fill(panel.dataset[key], {device: name, value: data.reading ? data.reading.value : ""}));
      }
    } catch (error) {
      show(error.message || panel.dataset.msgFailed);
    } finally {
      button.disabled = false;
    }
  });
})();

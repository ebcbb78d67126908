/* The reviewer UI's only script (no build step). Three small behaviours, all optional:
   the pages work without JavaScript, the server refuses a second decision anyway. */
(function () {
  "use strict";

  // 1. A decision form submits once: a double click or a second Enter sends nothing more.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.classList || !form.classList.contains("once")) return;
    if (form.dataset.submitted === "true") {
      event.preventDefault();
      return;
    }
    if (typeof form.checkValidity === "function" && !form.checkValidity()) return;
    form.dataset.submitted = "true";
    form.setAttribute("aria-busy", "true");
    // Disable after this tick so the browser still submits the form normally.
    setTimeout(function () {
      form.querySelectorAll("button[type=submit]").forEach(function (button) {
        button.disabled = true;
      });
    }, 0);
  }, true);

  // 2. Keyboard: a = approve (focus the comment), r = reject (focus the reason), e = edit.
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || event.defaultPrevented) return;
    var target = event.target;
    var tag = target && target.tagName;
    if (tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || (target && target.isContentEditable)) return;
    var key = event.key && event.key.toLowerCase();
    var focus = { a: "approve-comment", r: "reject-reason", e: "edit-link" }[key];
    var element = focus && document.getElementById(focus);
    if (!element) return;
    event.preventDefault();
    element.focus();
  });

  // 3. The live status: poll the status fragment every second until the commit is final.
  var live = document.getElementById("live-status");
  if (!live || live.dataset.final === "true") return;
  var url = live.dataset.pollUrl;
  var delay = 1000;
  function poll() {
    fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" }, cache: "no-store" })
      .then(function (response) {
        if (!response.ok) throw new Error("status " + response.status);
        return response.text();
      })
      .then(function (html) {
        delay = 1000;
        var holder = document.createElement("div");
        holder.innerHTML = html.trim();
        var panel = holder.firstElementChild;
        if (!panel) return;
        // Replace only when it changed, so screen readers announce changes, not every poll.
        var current = live.firstElementChild;
        if (!current || current.outerHTML !== panel.outerHTML) {
          live.replaceChildren(panel);
        }
        live.dataset.final = panel.dataset.final;
      })
      .catch(function () {
        delay = Math.min(delay * 2, 10000);  // the server is busy or gone: back off, keep trying
      })
      .then(function () {
        if (live.dataset.final !== "true") setTimeout(poll, delay);
      });
  }
  setTimeout(poll, delay);
})();

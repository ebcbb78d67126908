/* The reviewer UI's only script (no build step). Four small behaviours, all optional:
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

  // 3. On a phone the inbox's filters fold into their "Filters" line (unless one is set): the proposals,
  //    not the filter form, fill the first screen.
  //    So does the "For you" section, to its "For you (N)" line.
  var filters = document.getElementById("filter-panel");
  if (filters && filters.dataset.active !== "true" && window.matchMedia("(max-width: 40rem)").matches) {
    filters.open = false;
  }
  var forYou = document.getElementById("for-you");
  if (forYou && window.matchMedia("(max-width: 40rem)").matches) forYou.open = false;

  // 4. The live status: poll the status fragment while the proposal is pending (another reviewer may decide
  //    it) or being committed, at the pace the panel asks for (data-poll-ms), until its status is final.
  var live = document.getElementById("live-status");
  if (!live || live.dataset.final === "true") return;
  var url = live.dataset.pollUrl;
  function pace() {
    var panel = live.firstElementChild;
    return Number(panel && panel.dataset.pollMs) || 1000;
  }
  var delay = pace();

  // The proposal was decided elsewhere while this page offered a decision: withdraw the forms (the server
  // would refuse them anyway) and say so, unless this page's own form is on its way.
  function decidedMeanwhile(status) {
    var decide = document.querySelector("section.decide");
    if (!decide || decide.querySelector("form[data-submitted=true]")) return;
    var notice = document.createElement("section");
    notice.className = "card notice decided-meanwhile";
    notice.setAttribute("role", "status");
    var text = document.createElement("p");
    var strong = document.createElement("strong");
    strong.textContent = "Decided meanwhile.";
    text.appendChild(strong);
    text.appendChild(document.createTextNode(" This proposal is now " + status +
      ": there is nothing left to decide here. "));
    var reload = document.createElement("a");
    reload.href = window.location.pathname;
    reload.textContent = "Reload to see who decided";
    text.appendChild(reload);
    notice.appendChild(text);
    decide.replaceWith(notice);
  }

  // The page never contradicts itself: when the live panel shows a new status, the header's badge and the
  // history (decisions, receipt) are fetched again with it (the same page, its two parts swapped in).
  var shown = live.firstElementChild && live.firstElementChild.dataset.status;
  function refreshRecord() {
    if (!window.DOMParser) return;
    fetch(window.location.pathname, { credentials: "same-origin", headers: { Accept: "text/html" },
                                      cache: "no-store" })
      .then(function (response) {
        if (!response.ok) throw new Error("status " + response.status);
        return response.text();
      })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        ["status-badge", "history"].forEach(function (id) {
          var fresh = doc.getElementById(id);
          var current = document.getElementById(id);
          if (fresh && current) current.replaceWith(document.importNode(fresh, true));
        });
      })
      .catch(function () { /* the next status change tries again */ });
  }

  function poll() {
    if (document.hidden) {  // a background tab asks again later
      setTimeout(poll, delay);
      return;
    }
    fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" }, cache: "no-store" })
      .then(function (response) {
        if (!response.ok) throw new Error("status " + response.status);
        return response.text();
      })
      .then(function (html) {
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
        if (panel.dataset.status !== "pending") decidedMeanwhile(panel.dataset.status);
        if (panel.dataset.status !== shown) {
          shown = panel.dataset.status;
          refreshRecord();
        }
        delay = pace();
      })
      .catch(function () {
        delay = Math.min(delay * 2, 30000);  // the server is busy or gone: back off, keep trying
      })
      .then(function () {
        if (live.dataset.final !== "true") setTimeout(poll, delay);
      });
  }
  setTimeout(poll, delay);
})();

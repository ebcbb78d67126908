/* The inbox refreshes itself (a static file: the CSP allows no inline script, docs/security.md).
   Every few seconds it asks /inbox/live/ for the capped counts per status of this page's selection; when
   they changed (a new proposal, a decision, a commit), it fetches this same page and swaps in its status
   tabs and its list, leaving the filter form (and whatever is being typed in it) alone. The tab's title
   shows how many proposals wait. Without JavaScript the inbox is the same page, reloaded by hand. */
(function () {
  "use strict";

  var live = document.getElementById("inbox-live");
  if (!live || !window.fetch || !window.DOMParser) return;
  var url = live.dataset.pollUrl + window.location.search;
  var base = Number(live.dataset.pollMs) || 5000;
  var delay = base;
  var seen = null;
  var suffix = document.title.replace(/^\(\d+\+?\)\s*/, "");

  function title(pending) {
    document.title = (pending && pending !== "0" ? "(" + pending + ") " : "") + suffix;
  }

  function swap(html) {
    var doc = new DOMParser().parseFromString(html, "text/html");
    ["status-tabs", "inbox-rows"].forEach(function (id) {
      var fresh = doc.getElementById(id);
      var current = document.getElementById(id);
      if (fresh && current) current.replaceWith(document.importNode(fresh, true));
    });
  }

  function get(address, accept) {
    return fetch(address, { credentials: "same-origin", headers: { Accept: accept }, cache: "no-store" })
      .then(function (response) {
        if (!response.ok) throw new Error("status " + response.status);
        return accept === "application/json" ? response.json() : response.text();
      });
  }

  function poll() {
    if (document.hidden) {  // a background tab asks again later
      setTimeout(poll, delay);
      return;
    }
    get(url, "application/json")
      .then(function (body) {
        title(body.pending);
        var counts = JSON.stringify(body.counts);
        var changed = seen !== null && counts !== seen;
        seen = counts;
        delay = base;
        if (changed) return get(window.location.href, "text/html").then(swap);
      })
      .catch(function () {
        delay = Math.min(delay * 2, 60000);  // busy or logged out: back off, keep trying
      })
      .then(function () {
        setTimeout(poll, delay);
      });
  }
  poll();
})();

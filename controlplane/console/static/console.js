// The live page's one piece of script of ccs's own: a fragment re-fetch that failed on the
// network is tried again.
//
// Why: the page re-reads its fragment when the live stream says the cluster changed. A fetch
// that never reached the server (a reset connection, the browser's ERR_NETWORK_CHANGED when an
// interface comes or goes, a replica restarting) leaves the page showing the state from before
// that change, and nothing corrects it until the cluster changes again - which may be never.
// So a failed fetch of #content is issued again after 1, 2, 4, 8, then every 10 seconds until
// one reaches the server. Answers with an error status are not retried: they are shown (the
// htmx-config in layout.html swaps them in) and the next change re-reads anyway.
(function () {
  "use strict";
  var delay = 0;
  var timer = null;
  document.addEventListener("htmx:sendError", function (e) {
    var elt = e.detail && e.detail.elt;
    if (!elt || elt.id !== "content" || timer !== null) { return; }
    delay = delay ? Math.min(delay * 2, 10) : 1;
    console.warn("ccs: the page's refresh did not reach the server; again in " + delay + " s");
    timer = window.setTimeout(function () {
      timer = null;
      htmx.trigger(elt, "sse:change");
    }, delay * 1000);
  });
  document.addEventListener("htmx:afterRequest", function (e) {
    var elt = e.detail && e.detail.elt;
    if (elt && elt.id === "content" && e.detail.xhr && e.detail.xhr.status) { delay = 0; }
  });
})();

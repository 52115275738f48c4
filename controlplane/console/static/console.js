// The console's one piece of script of its own: what happens to a request that never reached
// the server (a reset connection, chromium's ERR_NETWORK_CHANGED when an interface comes or goes
// - Docker creating a bridge or a veth is enough - or a replica restarting).
//
// Why: htmx drops such a request and says nothing. For the live page that means showing the
// state from before a change until the cluster changes again, which may be never; for a form it
// means a button that seems to do nothing.
//
// - An element marked data-retry="EVENT" only reads (the live fragment, the deploy diff) or sets
//   a value that is the same however often it is set (a release's traffic weight). Its request
//   is issued again by triggering EVENT on it after 1, 2, 4, 8, then every 10 seconds until one
//   reaches the server.
// - Any other request changes the cluster (apply a deploy, promote, roll back). It may or may not
//   have reached the server before the connection broke, so it is not sent again behind the
//   user's back: the flash says so and the user looks and decides.
//
// Answers with an error status are not retried: they are shown (the htmx-config in layout.html
// swaps them in).
(function () {
  "use strict";
  var retries = new WeakMap();  // element -> {delay: seconds, timer: id or null}

  // The markup of templates/_flash.html; ``retrying`` marks a message this script takes back
  // once the request it speaks of has reached the server.
  function say(text, retrying) {
    var flash = document.getElementById("flash");
    if (!flash) { return; }
    var p = document.createElement("p");
    p.className = "flash error";
    if (retrying) { p.setAttribute("data-retrying", ""); }
    p.id = "flash-message";
    p.setAttribute("role", "status");
    p.textContent = text;
    flash.replaceChildren(p);
  }

  document.addEventListener("htmx:sendError", function (e) {
    var elt = e.detail && e.detail.elt;
    if (!elt) { return; }
    var again = elt.getAttribute("data-retry");
    if (!again) {
      say("The request did not reach the server (a network error). It changes the cluster, so it " +
          "was not sent again: check the current state, then try again.");
      return;
    }
    var r = retries.get(elt) || {delay: 0, timer: null};
    retries.set(elt, r);
    if (r.timer !== null) { return; }
    r.delay = r.delay ? Math.min(r.delay * 2, 10) : 1;
    console.warn("ccs: a request did not reach the server; again in " + r.delay + " s");
    if (elt.id !== "content") {
      say("The request did not reach the server (a network error); sending it again in " + r.delay + " s.", true);
    }
    r.timer = window.setTimeout(function () {
      r.timer = null;
      htmx.trigger(elt, again);
    }, r.delay * 1000);
  });

  document.addEventListener("htmx:afterRequest", function (e) {
    var elt = e.detail && e.detail.elt;
    var r = elt && retries.get(elt);
    if (r && e.detail.xhr && e.detail.xhr.status) {
      r.delay = 0;
      var msg = document.querySelector("#flash [data-retrying]");
      if (msg) { msg.remove(); }
    }
  });
})();

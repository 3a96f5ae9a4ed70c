// trustledger live updates (written for this project; no library). When the log grows, the page
// is fetched again and each element marked data-live is replaced by its new version, at most
// once every two seconds. Forms are never marked, so nothing being typed is lost. Without
// scripts the pages simply show the state as of their loading.
(function () {
  "use strict";
  if (!window.EventSource || !document.querySelector("[data-live]")) return;
  var waiting = false;
  function refresh() {
    waiting = false;
    fetch(location.href, { credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (text) {
        if (!text) return;
        var fresh = new DOMParser().parseFromString(text, "text/html");
        document.querySelectorAll("[data-live]").forEach(function (old) {
          var replacement = old.id && fresh.getElementById(old.id);
          if (replacement) old.replaceWith(document.importNode(replacement, true));
        });
        document.documentElement.dataset.refreshed = String(Date.now());
      })
      .catch(function () {});
  }
  var source = new EventSource("/live");
  // A browser holds few connections per server: give this one back as the page goes.
  window.addEventListener("pagehide", function () { source.close(); });
  source.addEventListener("head", function () {
    if (!waiting) {
      waiting = true;
      setTimeout(refresh, 2000);
    }
  });
})();

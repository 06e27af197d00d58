// Live progress of scans and exports: polls the JSON endpoint every 2 s and updates the
// <progress> element and counters of each [data-progress-url] box; stops once it has finished.
"use strict";

(function () {
  var INTERVAL_MS = 2000;

  function update(box, data) {
    box.querySelectorAll("[data-field]").forEach(function (el) {
      var field = el.getAttribute("data-field");
      if (!(field in data)) {
        return;
      }
      if (el.tagName === "PROGRESS") {
        el.value = data[field];
        el.textContent = data.percent + "%";
      } else {
        el.textContent = String(data[field]);
      }
    });
    var badge = box.querySelector("[data-field=state_label]");
    if (badge) {
      badge.className = "badge state-" + data.state;
    }
    announce(box, data);
  }

  // The polite live region speaks when the state or the tens of percent change: every poll
  // would interrupt a screen reader user every two seconds.
  function announce(box, data) {
    var region = box.querySelector("[data-announce]");
    if (!region) {
      return;
    }
    var key = data.state + "|" + Math.floor(data.percent / 10);
    // Until the first change, what the server rendered is what the region says.
    var previous = region.getAttribute("data-key") ||
      region.getAttribute("data-state") + "|" + Math.floor(Number(region.getAttribute("data-percent")) / 10);
    if (previous === key) {
      return;
    }
    region.setAttribute("data-key", key);
    // An export's endpoint words its own announcement; a scan's is built here.
    region.textContent = data.announce ||
      "Scan " + String(data.state_label).toLowerCase() + ", " + data.percent + "% done (" +
      data.batches_finished + " of " + data.batches_total + " batches)";
  }

  function watch(box) {
    var url = box.getAttribute("data-progress-url");
    var timer = null;
    var failures = 0;
    function poll() {
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) {
          if (!response.ok) {
            throw new Error("HTTP " + response.status);
          }
          return response.json();
        })
        .then(function (data) {
          failures = 0;
          update(box, data);
          if (data.finished) {
            window.clearInterval(timer);
            box.removeAttribute("data-active");
            box.setAttribute("data-finished", "1");
            // Show the final figures (results, errors) once.
            if (box.hasAttribute("data-reload")) {
              window.location.reload();
            }
          }
        })
        .catch(function () {
          // A few transient failures (a restarting server) are tolerated, then polling stops.
          failures += 1;
          if (failures >= 3) {
            window.clearInterval(timer);
            box.setAttribute("data-error", "1");
          }
        });
    }
    timer = window.setInterval(poll, INTERVAL_MS);
    poll();
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-progress-url][data-active]").forEach(watch);
  });
})();

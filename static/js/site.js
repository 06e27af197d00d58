// Progressive enhancement for every page; the pages work without it.
"use strict";

document.addEventListener("DOMContentLoaded", function () {
  // Ask before destructive POSTs (revoke, deactivate): <form data-confirm="...">.
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.getAttribute("data-confirm"))) {
        event.preventDefault();
      }
    });
  });

  // Long filter panels start folded on a phone, so the results are on the first screen.
  if (window.matchMedia("(max-width: 640px)").matches) {
    document.querySelectorAll("details[data-collapse-on-phone]").forEach(function (details) {
      details.open = false;
    });
  }

  // Timestamps arrive absolute (cached pages stay true); show them relative to now.
  var units = [["year", 31536000], ["month", 2592000], ["week", 604800], ["day", 86400], ["hour", 3600], ["minute", 60]];
  var format = window.Intl && Intl.RelativeTimeFormat ? new Intl.RelativeTimeFormat("en", { numeric: "auto" }) : null;
  document.querySelectorAll("time[data-relative]").forEach(function (el) {
    var when = Date.parse(el.getAttribute("datetime"));
    if (!format || isNaN(when)) {
      return;
    }
    var seconds = (when - Date.now()) / 1000;
    for (var i = 0; i < units.length; i++) {
      if (Math.abs(seconds) >= units[i][1] || i === units.length - 1) {
        el.textContent = format.format(Math.round(seconds / units[i][1]), units[i][0]);
        return;
      }
    }
  });

  // A copy button on remediation command blocks.
  if (navigator.clipboard) {
    document.querySelectorAll("pre.commands").forEach(function (pre) {
      var button = document.createElement("button");
      button.type = "button";
      button.className = "copy";
      button.textContent = "Copy commands";
      button.addEventListener("click", function () {
        navigator.clipboard.writeText(pre.textContent).then(function () {
          button.textContent = "Copied";
          window.setTimeout(function () { button.textContent = "Copy commands"; }, 2000);
        });
      });
      pre.parentNode.insertBefore(button, pre);
    });
  }
});

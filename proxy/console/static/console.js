// The migration console's little script: pages work without it; with it, the routes page refreshes
// itself, actions ask before they act, filters apply on change, and a difference points at its lines.
// No build step, no library, served from the admin listener (the Content-Security-Policy allows nothing else).
"use strict";

(function () {
  // Ask before a POST that changes something (forms with data-confirm). Delegated: refreshed pages keep it.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
    }
  });

  // Filters apply as soon as one changes.
  document.addEventListener("change", function (event) {
    var form = event.target.form;
    if (form && form.id === "filters") {
      form.submit();
    }
  });

  // A difference row marks its field path in both JSON documents and brings the first into view.
  document.addEventListener("click", function (event) {
    var row = event.target.closest && event.target.closest("#differences tr[data-path]");
    if (!row) {
      return;
    }
    var path = row.getAttribute("data-path");
    document.querySelectorAll(".json .line.focus").forEach(function (line) {
      line.classList.remove("focus");
    });
    var first = null;
    document.querySelectorAll(".json .line").forEach(function (line) {
      if (line.getAttribute("data-path") === path) {
        line.classList.add("focus");
        first = first || line;
      }
    });
    if (first) {
      first.scrollIntoView({ block: "center", behavior: "smooth" });
    }
  });

  // The routes page reads the proxy again every data-refresh seconds, while it is visible and idle.
  var main = document.getElementById("main");
  var every = main && Number(main.getAttribute("data-refresh"));
  if (!every) {
    return;
  }
  var paused = false;
  var state = document.getElementById("refresh-state");
  if (state) {
    var toggle = document.createElement("button");
    toggle.type = "button";
    toggle.className = "quiet";
    toggle.textContent = "pause";
    toggle.addEventListener("click", function () {
      paused = !paused;
      toggle.textContent = paused ? "resume" : "pause";
    });
    state.after(toggle);
  }

  function busy() {
    var active = document.activeElement;
    return paused || document.visibilityState !== "visible" ||
      (active && active.form) || document.querySelector("details[open]");
  }

  function refresh() {
    if (busy()) {
      return;
    }
    fetch(window.location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (response) {
        if (!response.ok || response.redirected) {
          throw new Error("signed out or failing: " + response.status);
        }
        return response.text();
      })
      .then(function (html) {
        var next = new DOMParser().parseFromString(html, "text/html").getElementById("main");
        if (next) {
          var fresh = next.querySelector("#refresh-state");
          main.innerHTML = next.innerHTML;
          var here = document.getElementById("refresh-state");
          if (here && fresh && toggle) {
            here.after(toggle);
          }
          main.setAttribute("data-refreshed", String(Date.now()));
        }
      })
      .catch(function () {
        if (state) {
          document.getElementById("refresh-state").textContent = "not refreshing (reload the page)";
        }
        paused = true;
      });
  }

  window.setInterval(refresh, every * 1000);
})();

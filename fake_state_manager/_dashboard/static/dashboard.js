/* The dashboard's only script: live parts and small conveniences. No framework, no build.
 *
 * An element with data-live-url is refreshed from that URL (an HTML fragment rendered by the
 * server) every 2 s while the tab is visible; polling pauses while the tab is hidden and stops
 * once the fragment says it is final (a finished run). A 401 (the session ended) reloads the
 * page, which leads to the key prompt. Open/closed <details> survive a refresh.
 */
(function () {
  "use strict";

  var PERIOD_MS = 2000;

  function openTarget() {
    var id = window.location.hash.slice(1);
    if (!id) {
      return;
    }
    var element = document.getElementById(decodeURIComponent(id));
    if (element && element.tagName === "DETAILS") {
      element.open = true;
    }
  }

  function live(container) {
    var url = container.getAttribute("data-live-url");
    var stamp = document.querySelector("[data-live-stamp]");
    var timer = null;

    function say(text) {
      if (stamp) {
        stamp.textContent = text;
      }
    }

    function finished() {
      return container.querySelector("[data-live-final='1']") !== null;
    }

    function editing() {
      var element = document.activeElement;
      return element !== null && container.contains(element) &&
        (element.tagName === "INPUT" || element.tagName === "SELECT" ||
         element.tagName === "TEXTAREA");
    }

    function schedule() {
      if (finished()) {
        say("finished: live updates stopped");
        return;
      }
      if (timer === null && !document.hidden) {
        timer = window.setTimeout(tick, PERIOD_MS);
      }
    }

    function replace(html) {
      var open = {};
      container.querySelectorAll("details[id]").forEach(function (element) {
        open[element.id] = element.open;
      });
      container.innerHTML = html;
      container.querySelectorAll("details[id]").forEach(function (element) {
        if (Object.prototype.hasOwnProperty.call(open, element.id)) {
          element.open = open[element.id];
        }
      });
    }

    function tick() {
      timer = null;
      if (document.hidden) {
        return;
      }
      if (editing()) {
        schedule();
        return;
      }
      window.fetch(url, {credentials: "same-origin", cache: "no-store",
                         headers: {"Accept": "text/html"}})
        .then(function (response) {
          if (response.status === 401) {
            window.location.reload();
            return null;
          }
          if (!response.ok) {
            throw new Error("HTTP " + response.status);
          }
          return response.text();
        })
        .then(function (html) {
          if (html === null) {
            return;
          }
          // Compare as the browser serialises both: an unchanged part is left alone, so
          // nothing under the pointer moves while the run does not.
          var probe = document.createElement("div");
          probe.innerHTML = html;
          if (probe.innerHTML !== container.innerHTML) {
            replace(html);
          }
          say("updated " + new Date().toLocaleTimeString());
        })
        .catch(function (error) {
          say("live update failed (" + error.message + "), trying again");
        })
        .then(schedule);
    }

    document.addEventListener("visibilitychange", function () {
      if (document.hidden) {
        if (timer !== null) {
          window.clearTimeout(timer);
          timer = null;
        }
        say("paused while the tab is hidden");
      } else if (timer === null) {
        tick();
      }
    });
    schedule();
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-live-url]").forEach(live);
    document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
      select.addEventListener("change", function () {
        select.form.submit();
      });
    });
    openTarget();
  });
  window.addEventListener("hashchange", openTarget);
}());

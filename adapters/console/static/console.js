// carebot staff console: live updates over Server-Sent Events. Progressive enhancement only —
// every page works without this file; with it, the inbox rows and a thread's messages refresh
// themselves when the `console` feed says something changed (the feed carries ids only).
(function () {
  "use strict";
  var body = document.body;
  var feed = body.getAttribute("data-live");
  var page = body.getAttribute("data-page");

  document.addEventListener("submit", function (e) {
    var button = e.submitter;
    if (button && button.classList.contains("cb-danger") && !window.confirm(button.textContent.trim() + "?")) {
      e.preventDefault();
    }
  });

  if (!feed || !window.EventSource || (page !== "inbox" && page !== "thread")) return;

  function refresh(selector, replaceWhole) {
    var node = document.querySelector(selector);
    if (!node) return;
    fetch(node.getAttribute("data-src"), { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) {
        if (replaceWhole) { node.outerHTML = html; } else { node.innerHTML = html; }
      })
      .catch(function () { /* the next event or a reload will catch up */ });
  }

  var timer = null;
  function soon(fn) {
    if (timer) clearTimeout(timer);
    timer = setTimeout(fn, 250);  // a burst of events → one refetch
  }

  var thread = document.querySelector(".cb-thread");
  var ticket = thread ? thread.getAttribute("data-ticket") : "";
  var live = document.querySelector(".cb-live");
  var source = new EventSource(feed);
  source.onopen = function () {
    if (live) live.hidden = false;
    if (page === "inbox") soon(function () { refresh("#cb-rows", true); });  // catch up after a reconnect
  };
  source.onerror = function () { if (live) live.hidden = true; };
  source.onmessage = function (e) {
    var event;
    try { event = JSON.parse(e.data); } catch (err) { return; }
    if (page === "inbox") {
      soon(function () { refresh("#cb-rows", true); });
    } else if (page === "thread" && event.ticket === ticket) {
      soon(function () { refresh("#cb-messages", false); });
      if (event.type !== "patient_message" && !document.querySelector(".cb-stale")) {
        var note = document.createElement("p");
        note.className = "cb-flash cb-stale";
        note.setAttribute("role", "status");
        var link = document.createElement("a");
        link.href = window.location.pathname;
        link.textContent = document.documentElement.lang === "en" ? "This ticket changed — reload" : "工单状态已变化，点击刷新";
        note.appendChild(link);
        document.querySelector(".cb-main").prepend(note);
      }
    }
  };
})();

// carebot staff console: live updates over Server-Sent Events. Progressive enhancement only —
// every page works without this file; with it, the inbox rows and a thread's messages refresh
// themselves when the `console` feed says something changed (the feed carries ids only).
(function () {
  "use strict";
  var body = document.body;
  var feed = body.getAttribute("data-live");
  var page = body.getAttribute("data-page");

  var leaving = false;  // a form is being sent: a live reload now would cancel it (e.g. Acknowledge)
  document.addEventListener("submit", function (e) {
    var button = e.submitter;
    if (button && button.classList.contains("cb-danger") && !window.confirm(button.textContent.trim() + "?")) {
      e.preventDefault();
      return;
    }
    leaving = true;
  });

  // Emergency alerts (adapters/console/paging.py): tell the server each one was displayed (that is a
  // delivered page, and the patient is told), and sound until someone acknowledges.
  function beep() {
    var Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx) return;
    try {
      var ctx = new Ctx(), osc = ctx.createOscillator(), gain = ctx.createGain();
      osc.frequency.value = 880; gain.gain.value = 0.2;
      osc.connect(gain); gain.connect(ctx.destination);
      osc.start(); osc.stop(ctx.currentTime + 0.6);
    } catch (err) { /* a browser that blocks audio still shows the alert */ }
  }
  function showAlerts() {
    var forms = document.querySelectorAll(".cb-alert[data-seen]");
    if (document.visibilityState === "hidden") {  // a tab in the background has shown nobody anything
      if (forms.length) document.addEventListener("visibilitychange", showAlerts, { once: true });
      return;
    }
    forms.forEach(function (form) {
      if (form.getAttribute("data-told")) return;
      form.setAttribute("data-told", "1");
      var data = new FormData();
      data.append("csrf", form.querySelector("input[name=csrf]").value);
      fetch(form.getAttribute("data-seen"), { method: "POST", body: data, credentials: "same-origin" });
    });
    if (forms.length) beep();
  }
  showAlerts();
  var ringing = setInterval(function () {
    if (document.querySelector(".cb-alert")) beep(); else clearInterval(ringing);
  }, 5000);

  // A photo on a ticket opens enlarged over the page (the link still works without this file).
  document.addEventListener("click", function (e) {
    var link = e.target.closest ? e.target.closest("a.cb-photo") : null;
    if (!link || !window.HTMLDialogElement) return;
    e.preventDefault();
    var dialog = document.getElementById("cb-lightbox");
    if (!dialog) {
      dialog = document.createElement("dialog");
      dialog.id = "cb-lightbox";
      dialog.className = "cb-lightbox";
      dialog.addEventListener("click", function () { dialog.close(); });
      document.body.appendChild(dialog);
    }
    dialog.innerHTML = "";
    var img = document.createElement("img");
    img.src = link.href;
    img.alt = link.title;
    dialog.appendChild(img);
    dialog.showModal();
  });

  // New tickets: a line on the inbox; an urgent one also sounds and, once allowed, shows a desktop
  // notification — the doctor may be in another tab or window.
  var notifyButton = document.querySelector(".cb-notify");
  if (notifyButton && window.Notification) {
    notifyButton.hidden = Notification.permission === "granted";
    notifyButton.addEventListener("click", function () {
      Notification.requestPermission().then(function (answer) {
        notifyButton.textContent = notifyButton.getAttribute(answer === "granted" ? "data-on" : "data-denied");
      });
    });
  }
  var news = document.querySelector(".cb-news");
  function announce(event) {
    var urgent = event.priority === "urgent";
    if (news) {
      news.textContent = news.getAttribute(urgent ? "data-urgent" : "data-new") + " · " + event.ticket;
      news.className = "cb-news" + (urgent ? " cb-news-urgent" : "");
      news.hidden = false;
    }
    if (!urgent) return;
    beep();
    if (window.Notification && Notification.permission === "granted") {
      var n = new Notification(news ? news.getAttribute("data-urgent") : "!", { body: event.ticket, tag: "cb-" + event.ticket });
      n.onclick = function () { window.focus(); window.location.assign("/console/tickets/" + encodeURIComponent(event.ticket)); };
    }
  }

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
    if (event.type === "page" || event.type === "page_acknowledged" || event.type === "page_unanswered") {
      if (leaving) return;  // the page being loaded shows the news
      if (page === "inbox") {
        window.location.reload();  // the alert list and its sound come with the page
      } else if (event.type === "page") {
        beep();
        window.location.assign("/console/inbox");
      }
      return;
    }
    if (event.type === "ticket_opened" || event.type === "ticket_reoffered") announce(event);
    if (page === "inbox") {
      soon(function () { refresh("#cb-rows", true); });
    } else if (page === "thread" && event.ticket === ticket) {
      soon(function () { refresh("#cb-messages", false); });
      var talk = event.type === "patient_message" || event.type === "ticket_replied" || event.type === "ticket_noted";
      if (!talk && !document.querySelector(".cb-stale")) {
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

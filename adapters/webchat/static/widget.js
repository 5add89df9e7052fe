/* carebot web chat widget. No build step, no dependencies.
 *
 * On a hospital's site:  <script src="https://carebot.example.org/widget.js" defer></script>
 *   optional attributes: data-locale="en" (zh-CN | en), data-title="…", data-open="true"
 * The /chat page loads it with data-mode="page" to fill the window.
 *
 * Safety: every text from the server or the patient goes into the page with textContent, never
 * innerHTML, so "<script>" or "<img onerror>" shows as the characters typed.
 */
(function () {
  "use strict";

  var script = document.currentScript;
  var ORIGIN = new URL(script.src, location.href).origin;
  var MODE = script.getAttribute("data-mode") === "page" ? "page" : "embed";
  var KEY = "carebot.webchat:" + ORIGIN + ":";

  var TEXT = {
    "zh-CN": {
      title: "在线咨询", launcher: "在线咨询", close: "关闭", language: "语言",
      placeholder: "输入消息…", send: "发送", attach: "上传图片", input_label: "给护理助手的消息",
      log_label: "对话记录", bot: "护理助手（机器人）", staff: "医生本人回复", you: "我",
      typing: "正在输入…", staff_typing: "医生正在输入…", connecting: "正在连接…", reconnecting: "连接已断开，正在重新连接…",
      sending: "发送中…", failed: "未发送", image: "图片", report: "报告（PDF）", open: "打开",
      image_from: "{who}发送的图片", choices: "可选回复",
      emergency: "紧急", guidance: "等待时可以做的事", call: "拨打 {number}", calls: "急救电话", hide: "收起",
      err_too_long: "消息太长了（最多 {limit} 个字），请分几条发送。",
      err_too_large: "文件太大了（最大 {limit}），请压缩后再试。",
      err_bad_type: "只能上传图片（JPG、PNG、GIF、WebP）或 PDF 报告。",
      err_rate_limited: "发送太快了，请 {retry} 秒后再试。",
      err_empty: "请输入内容。", err_bad_request: "消息格式有误，请重试。",
      err_bad_media: "找不到这张图片，请重新上传。", err_bad_token: "会话已过期，已为您开始新的对话。",
      err_server_error: "服务暂时出错，请稍后再试。", err_unavailable: "服务暂时不可用，消息会自动重发。", err_offline: "网络未连接，消息会在连接后发送。",
      err_forbidden: "此网站未被允许使用在线咨询。", err_upload: "上传失败，请重试。"
    },
    en: {
      title: "Chat with us", launcher: "Chat with us", close: "Close", language: "Language",
      placeholder: "Type a message…", send: "Send", attach: "Upload a photo", input_label: "Message to the care assistant",
      log_label: "Conversation", bot: "Care assistant (bot)", staff: "A doctor is replying", you: "You",
      typing: "Typing…", staff_typing: "The doctor is typing…", connecting: "Connecting…", reconnecting: "Connection lost, reconnecting…",
      sending: "Sending…", failed: "Not sent", image: "Image", report: "Report (PDF)", open: "Open",
      image_from: "Image from {who}", choices: "Quick replies",
      emergency: "Emergency", guidance: "While you wait", call: "Call {number}", calls: "Emergency numbers", hide: "Hide",
      err_too_long: "That message is too long (at most {limit} characters). Please split it up.",
      err_too_large: "That file is too large (at most {limit}). Please make it smaller.",
      err_bad_type: "Only photos (JPG, PNG, GIF, WebP) or PDF reports can be uploaded.",
      err_rate_limited: "You're sending too fast. Please try again in {retry} s.",
      err_empty: "Please type a message.", err_bad_request: "That message could not be read. Please try again.",
      err_bad_media: "That image was not found. Please upload it again.", err_bad_token: "Your session expired, so a new conversation has started.",
      err_server_error: "Something went wrong on our side. Please try again shortly.", err_unavailable: "The service is briefly unavailable. Your message will be sent again automatically.", err_offline: "You're offline. Your message will be sent when the connection is back.",
      err_forbidden: "This site is not allowed to use the chat.", err_upload: "The upload failed. Please try again."
    }
  };

  // -- small helpers -----------------------------------------------------------------------------

  function load(name) { try { return window.localStorage.getItem(KEY + name); } catch (e) { return null; } }
  function save(name, value) {
    try { if (value === null) window.localStorage.removeItem(KEY + name); else window.localStorage.setItem(KEY + name, value); } catch (e) { /* storage off: a session lasts the page */ }
  }
  // an icon drawn as SVG, never an emoji: a device without an emoji font shows an empty box
  function icon(cls, d) {
    var NS = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(NS, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("class", cls);
    var path = document.createElementNS(NS, "path");
    path.setAttribute("d", d);
    path.setAttribute("fill", "currentColor");
    svg.appendChild(path);
    return svg;
  }

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }
  function newId() {
    var bytes = new Uint8Array(12);
    (window.crypto || window.msCrypto).getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }
  function fill(template, values) {
    return template.replace(/\{(\w+)\}/g, function (_, k) { return values[k] !== undefined ? values[k] : ""; });
  }

  function pickLocale() {
    var chosen = load("locale") || script.getAttribute("data-locale") || (navigator.language || "zh-CN");
    return /^zh/i.test(chosen) ? "zh-CN" : (/^en/i.test(chosen) ? "en" : "zh-CN");
  }

  // -- state ---------------------------------------------------------------------------------------

  var locale = pickLocale();
  var token = load("token");
  var maxText = 2000, maxEmergencyText = 2000, maxUpload = 8 * 1024 * 1024;
  var seen = {};          // seq → true: each message is shown once
  var contiguous = 0;     // every seq up to this one is shown; a reconnect asks for what follows
  var pending = [];       // messages typed but not yet acknowledged (kept across reloads)
  try { pending = JSON.parse(load("pending") || "[]") || []; } catch (e) { pending = []; }
  var ws = null, live = false, http = false, failures = 0, everOpened = false, retryTimer = null, gapTimer = null;
  var typingTimer = null;

  function t(key) { return TEXT[locale][key] || TEXT.en[key] || key; }

  // -- the DOM (inside a shadow root, so the host page's styles and ours never mix) ---------------

  var host = el("div", "carebot-host");
  host.setAttribute("data-carebot", MODE);
  var root = host.attachShadow ? host.attachShadow({ mode: "open" }) : host;
  var css = document.createElement("link");
  css.rel = "stylesheet";
  css.href = ORIGIN + "/webchat/widget.css";
  root.appendChild(css);

  var shell = el("div", "cb-shell cb-" + MODE);
  var launcher = null;
  var panel = el("section", "cb-panel");
  panel.setAttribute("aria-labelledby", "cb-title");

  var header = el("header", "cb-header");
  var title = el("h1", "cb-title");
  title.id = "cb-title";
  var langGroup = el("div", "cb-lang");
  langGroup.setAttribute("role", "group");
  var langButtons = {};
  [["zh-CN", "中文"], ["en", "EN"]].forEach(function (pair) {
    var b = el("button", "cb-lang-btn", pair[1]);
    b.type = "button";
    b.lang = pair[0];
    b.setAttribute("data-locale", pair[0]);
    b.addEventListener("click", function () { setLocale(pair[0]); });
    langButtons[pair[0]] = b;
    langGroup.appendChild(b);
  });
  var closeBtn = null;
  header.appendChild(title);
  header.appendChild(langGroup);
  if (MODE === "embed") {
    closeBtn = el("button", "cb-close", "×");
    closeBtn.type = "button";
    closeBtn.addEventListener("click", function () { toggle(false); });
    header.appendChild(closeBtn);
  }

  var status = el("div", "cb-status");
  status.setAttribute("role", "status");
  var logBox = el("div", "cb-log");
  logBox.setAttribute("role", "log");
  logBox.setAttribute("aria-live", "polite");
  logBox.setAttribute("aria-relevant", "additions");
  logBox.tabIndex = 0;
  var typing = el("div", "cb-typing");
  typing.setAttribute("role", "status");
  typing.hidden = true;
  // after an emergency, its numbers stay in reach above the conversation, however far it scrolls
  var sosBar = el("div", "cb-sos");
  sosBar.hidden = true;
  var alertBox = el("div", "cb-alert");
  alertBox.setAttribute("role", "alert");
  alertBox.hidden = true;

  var form = el("form", "cb-form");
  var inputLabel = el("label", "cb-sr");
  inputLabel.htmlFor = "cb-input";
  var input = el("textarea", "cb-input");
  input.id = "cb-input";
  input.rows = 1;
  input.setAttribute("enterkeyhint", "send");
  var fileInput = el("input", "cb-file");
  fileInput.type = "file";
  fileInput.id = "cb-file";
  fileInput.accept = "image/jpeg,image/png,image/gif,image/webp,application/pdf";
  var attach = el("button", "cb-attach");
  attach.appendChild(icon("cb-attach-icon", "M4 5a2 2 0 0 1 2-2h12a2 2 0 0 1 2 2v14a2 2 0 0 1-2 2H6a2 2 0 0 1-2-2zm2 0v10.6l3.3-3.3a1 1 0 0 1 1.4 0l2.3 2.3 3.3-3.3a1 1 0 0 1 1.4 0l.3.3V5zm3.5 2a1.75 1.75 0 1 1 0 3.5 1.75 1.75 0 0 1 0-3.5z"));
  attach.type = "button";
  attach.addEventListener("click", function () { fileInput.click(); });
  var sendBtn = el("button", "cb-send");
  sendBtn.type = "submit";
  form.appendChild(inputLabel);
  form.appendChild(attach);
  form.appendChild(fileInput);
  form.appendChild(input);
  form.appendChild(sendBtn);

  panel.appendChild(header);
  panel.appendChild(status);
  panel.appendChild(sosBar);
  panel.appendChild(logBox);
  panel.appendChild(typing);
  panel.appendChild(alertBox);
  panel.appendChild(form);

  if (MODE === "embed") {
    launcher = el("button", "cb-launcher");
    launcher.type = "button";
    launcher.setAttribute("aria-expanded", "false");
    launcher.addEventListener("click", function () { toggle(panel.hidden); });
    panel.hidden = true;
    panel.setAttribute("role", "dialog");
    shell.appendChild(launcher);
    panel.addEventListener("keydown", function (e) { if (e.key === "Escape") toggle(false); });
  }
  shell.appendChild(panel);
  root.appendChild(shell);

  function toggle(open) {
    panel.hidden = !open;
    if (launcher) {
      launcher.setAttribute("aria-expanded", open ? "true" : "false");
      if (!open) launcher.focus();
    }
    if (open) { input.focus(); scrollDown(); greet(); }
  }

  function applyLocale() {
    host.lang = locale;
    shell.lang = locale;
    title.textContent = script.getAttribute("data-title") || t("title");
    langGroup.setAttribute("aria-label", t("language"));
    Object.keys(langButtons).forEach(function (k) { langButtons[k].setAttribute("aria-pressed", k === locale ? "true" : "false"); });
    if (closeBtn) closeBtn.setAttribute("aria-label", t("close"));
    if (launcher) {
      launcher.textContent = "";
      launcher.appendChild(icon("cb-launcher-icon", "M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z"));
      launcher.appendChild(document.createTextNode(" " + t("launcher")));
    }
    logBox.setAttribute("aria-label", t("log_label"));
    inputLabel.textContent = t("input_label");
    input.placeholder = t("placeholder");
    sendBtn.textContent = t("send");
    attach.setAttribute("aria-label", t("attach"));
    attach.title = t("attach");
    Array.prototype.forEach.call(logBox.querySelectorAll(".cb-msg"), relabel);
    labelCalls(sosBar);
    if (!typing.hidden) typing.textContent = typing.getAttribute("data-staff") ? t("staff_typing") : t("typing");
    showStatus();
  }

  function setLocale(next) {
    var changed = next !== locale;
    locale = next;
    save("locale", next);
    applyLocale();
    if (changed) control({ type: "locale", locale: next });  // the bot answers in it from now on
  }

  // frames that are not messages: the first open (greeted once) and the language switch
  function control(frame) {
    if (live && ws) ws.send(JSON.stringify(frame));
    else if (http && token) api("POST", "/webchat/api/send", frame);
  }

  // -- messages ----------------------------------------------------------------------------------

  function whoLabel(sender, senderName) {
    if (sender === "patient") return t("you");
    if (sender.indexOf("staff:") === 0) return senderName || t("staff");
    return t("bot");
  }

  function relabel(node) {
    var who = node.querySelector(".cb-who");
    if (who) who.textContent = whoLabel(node.getAttribute("data-sender"), node.getAttribute("data-sender-name") || "");
    var badge = node.querySelector(".cb-badge");
    if (badge) badge.textContent = "🩺 " + t("staff");
    var state = node.querySelector(".cb-state");
    if (state) state.textContent = node.classList.contains("cb-failed") ? t("failed") : t("sending");
    var time = node.querySelector("time");
    if (time) time.textContent = formatTime(time.getAttribute("datetime"));
    var buttons = node.querySelector(".cb-buttons");
    if (buttons) buttons.setAttribute("aria-label", t("choices"));
    var urgent = node.querySelector(".cb-urgent");
    if (urgent) urgent.textContent = node.classList.contains("cb-guidance") ? "✚ " + t("guidance") : "⚠ " + t("emergency");
    labelCalls(node);
  }

  function labelCalls(node) {
    Array.prototype.forEach.call(node.querySelectorAll(".cb-call-label"), function (label) {
      label.textContent = fill(t("call"), { number: label.parentNode.getAttribute("data-number") });
    });
    Array.prototype.forEach.call(node.querySelectorAll(".cb-calls"), function (box) { box.setAttribute("aria-label", t("calls")); });
    var hide = node.querySelector(".cb-sos-hide");
    if (hide) hide.setAttribute("aria-label", t("hide"));
  }

  // a phone handset, drawn (an emoji may be missing from the device's fonts)
  function phoneIcon() {
    return icon("cb-call-icon", "M6.6 10.8a15.1 15.1 0 0 0 6.6 6.6l2.2-2.2a1 1 0 0 1 1-.25 11.4 11.4 0 0 0 3.6.57 1 1 0 0 1 1 1V20a1 1 0 0 1-1 1A17 17 0 0 1 3 4a1 1 0 0 1 1-1h3.5a1 1 0 0 1 1 1c0 1.25.2 2.46.57 3.6a1 1 0 0 1-.25 1z");
  }

  // tel: links for an emergency message's numbers (Outbound.extra["call"]), the ambulance first;
  // only digits and + * # reach the href, whatever the server sent
  function callNode(numbers) {
    var box = el("div", "cb-calls");
    box.setAttribute("role", "group");
    numbers.forEach(function (number, i) {
      var dial = String(number).replace(/[^0-9+*#]/g, "");
      if (!dial) return;
      var a = el("a", "cb-call" + (i ? " cb-call-more" : ""));
      a.href = "tel:" + dial;
      a.setAttribute("data-number", String(number));
      a.appendChild(phoneIcon());
      a.appendChild(el("span", "cb-call-label"));
      box.appendChild(a);
    });
    return box;
  }

  function formatTime(iso) {
    var d = new Date(iso);
    if (isNaN(d.getTime())) return "";
    var now = new Date();
    var opts = { hour: "2-digit", minute: "2-digit" };
    if (d.toDateString() !== now.toDateString()) { opts.month = "short"; opts.day = "numeric"; }
    try { return d.toLocaleString(locale, opts); } catch (e) { return d.toISOString().slice(0, 16).replace("T", " "); }
  }

  function messageNode(m) {
    var sender = m.sender || "bot";
    var staff = sender.indexOf("staff:") === 0;
    var cls = sender === "patient" ? "cb-patient" : (staff ? "cb-staff" : "cb-bot");
    var node = el("article", "cb-msg " + cls);
    var emergency = m.priority === "emergency";
    if (emergency) node.classList.add(m.guidance ? "cb-guidance" : "cb-emergency");
    if (m.guidance) node.setAttribute("data-guidance", m.guidance);
    node.setAttribute("data-sender", sender);
    if (m.sender_name) node.setAttribute("data-sender-name", m.sender_name);
    if (m.seq) node.setAttribute("data-seq", String(m.seq));
    if (m.key) node.setAttribute("data-key", m.key);
    if (m.question) node.setAttribute("data-question", m.question);
    if (m.client_id) node.setAttribute("data-client-id", m.client_id);
    var meta = el("div", "cb-meta");
    if (staff) meta.appendChild(el("span", "cb-badge"));
    if (emergency) meta.appendChild(el("span", "cb-urgent"));
    meta.appendChild(el("span", "cb-who"));
    if (m.at) {
      var time = el("time");
      time.setAttribute("datetime", m.at);
      meta.appendChild(time);
    } else {
      meta.appendChild(el("span", "cb-state"));
    }
    node.appendChild(meta);
    if (m.text && m.guidance) node.appendChild(guidanceNode(m.text, m.sources || 0));
    else if (m.text) node.appendChild(el("div", "cb-text", m.text));
    if (m.media) node.appendChild(mediaNode(m.media, whoLabel(sender, m.sender_name || "")));
    if (emergency && m.call && m.call.length) node.appendChild(callNode(m.call));
    if (m.buttons && m.buttons.length) {
      var group = el("div", "cb-buttons");
      group.setAttribute("role", "group");
      var question = m.question || "";
      m.buttons.forEach(function (b) {
        var button = el("button", "cb-choice", b.label);
        button.type = "button";
        button.setAttribute("data-value", b.value);
        button.addEventListener("click", function () {
          Array.prototype.forEach.call(group.querySelectorAll("button"), function (x) { x.disabled = true; });
          button.setAttribute("aria-pressed", "true");
          submit({ text: b.label, value: b.value, question: question });
          input.focus();
        });
        group.appendChild(button);
      });
      node.appendChild(group);
    }
    relabel(node);
    return node;
  }

  // what to do while waiting: the title line, the steps, then its sources (the last lines) in small print
  function guidanceNode(text, sources) {
    var lines = text.split("\n");
    var cited = sources > 0 && sources < lines.length ? lines.splice(lines.length - sources, sources) : [];
    var box = el("div", "cb-text");
    box.appendChild(el("strong", "cb-guidance-title", lines.shift()));
    if (lines.length) box.appendChild(document.createTextNode(lines.join("\n")));  // the title is a block
    if (cited.length) {
      var small = el("div", "cb-sources");
      cited.forEach(function (line) {
        var row = el("div");
        line.split(/(https?:\/\/\S+)/).forEach(function (part) {
          if (/^https?:\/\//.test(part)) {
            var a = el("a", "", part);
            a.href = part;
            a.target = "_blank";
            a.rel = "noopener noreferrer";
            row.appendChild(a);
          } else if (part) {
            row.appendChild(document.createTextNode(part));
          }
        });
        small.appendChild(row);
      });
      box.appendChild(small);
    }
    return box;
  }

  function mediaNode(media, who) {
    var box = el("div", "cb-media");
    if (media.kind === "image") {
      var img = el("img", "cb-img");
      img.alt = fill(t("image_from"), { who: who });
      img.addEventListener("load", function () { if (nearBottom(img.height + 80)) scrollDown(); });
      if (media.url && /^https?:/i.test(new URL(media.url, ORIGIN).protocol)) img.src = new URL(media.url, ORIGIN).href;
      else if (media.id) fetchMedia(media.id).then(function (url) { img.src = url; }).catch(function () { img.alt = t("err_bad_media"); });
      box.appendChild(img);
    } else {
      var open = el("button", "cb-file-link", t("report") + " · " + t("open"));
      open.type = "button";
      open.addEventListener("click", function () {
        if (media.url) { window.open(new URL(media.url, ORIGIN).href, "_blank", "noopener"); return; }
        fetchMedia(media.id).then(function (url) { window.open(url, "_blank", "noopener"); });
      });
      box.appendChild(open);
    }
    return box;
  }

  function fetchMedia(id) {
    return fetch(ORIGIN + "/webchat/api/media/" + encodeURIComponent(id), { headers: { Authorization: "Bearer " + token } })
      .then(function (r) { if (!r.ok) throw new Error(String(r.status)); return r.blob(); })
      .then(function (blob) { return URL.createObjectURL(blob); });
  }

  function show(m) {
    if (!m.seq || seen[m.seq]) return;
    seen[m.seq] = true;
    while (seen[contiguous + 1]) contiguous += 1;
    if (m.client_id) {
      var mine = logBox.querySelector('.cb-pending[data-client-id="' + CSS.escape(m.client_id) + '"]');
      if (mine) mine.remove();
      dropPending(m.client_id);
    }
    if (m.sender !== "patient") hideTyping();
    if (m.priority === "emergency" && m.call && m.call.length) showSos(m.call);
    var node = messageNode(m);
    // in seq order, ahead of messages still being sent
    var after = null;
    var nodes = logBox.querySelectorAll(".cb-msg");
    for (var i = nodes.length - 1; i >= 0; i--) {
      var s = Number(nodes[i].getAttribute("data-seq") || 0);
      if (s && s < m.seq) break;
      after = nodes[i];
    }
    logBox.insertBefore(node, after);
    settleButtons();
    scrollDown();
    if (contiguous < maxSeq()) askForGap();
  }

  // Only the newest question's buttons can be pressed, and only until the patient has answered:
  // after a reload, the history's old buttons stay inert (the server also refuses a stale press).
  function settleButtons() {
    var nodes = logBox.querySelectorAll(".cb-msg:not(.cb-pending)");
    var current = -1;
    for (var i = nodes.length - 1; i >= 0; i--) {
      if (nodes[i].getAttribute("data-sender") === "patient") break;
      if (nodes[i].querySelector(".cb-buttons")) { current = i; break; }
    }
    for (var j = 0; j < nodes.length; j++) {
      var group = nodes[j].querySelector(".cb-buttons");
      if (!group || j === current || group.classList.contains("cb-answered")) continue;
      group.classList.add("cb-answered");
      Array.prototype.forEach.call(group.querySelectorAll("button"), function (x) { x.disabled = true; });
    }
  }

  function showSos(numbers) {
    sosBar.textContent = "";
    sosBar.appendChild(callNode(numbers));
    var hide = el("button", "cb-sos-hide", "×");
    hide.type = "button";
    hide.addEventListener("click", function () { sosBar.hidden = true; });
    sosBar.appendChild(hide);
    labelCalls(sosBar);
    sosBar.hidden = false;
  }

  function maxSeq() {
    var keys = Object.keys(seen);
    return keys.length ? Math.max.apply(null, keys.map(Number)) : 0;
  }

  function askForGap() {
    if (gapTimer) return;
    gapTimer = setTimeout(function () {
      gapTimer = null;
      if (contiguous < maxSeq() && live) ws.send(JSON.stringify({ type: "resume", after: contiguous }));
    }, 400);
  }

  function scrollDown() { logBox.scrollTop = logBox.scrollHeight; }
  function nearBottom(slack) { return logBox.scrollHeight - logBox.scrollTop - logBox.clientHeight <= slack + 40; }

  function showTyping(staff) {
    typing.hidden = false;
    typing.setAttribute("data-staff", staff ? "1" : "");
    typing.textContent = staff ? t("staff_typing") : t("typing");
    clearTimeout(typingTimer);
    typingTimer = setTimeout(hideTyping, 10000);
  }
  function hideTyping() { typing.hidden = true; typing.textContent = ""; clearTimeout(typingTimer); }

  var alertTimer = null;
  function showError(code, extra) {
    extra = extra || {};
    var values = { limit: code === "too_large" ? humanSize(extra.limit || maxUpload) : (extra.limit || maxText),
                   retry: Math.ceil(extra.retry_after || 1) };
    alertBox.textContent = fill(t("err_" + code) || t("err_server_error"), values);
    alertBox.setAttribute("data-code", code);
    alertBox.hidden = false;
    clearTimeout(alertTimer);
    alertTimer = setTimeout(function () { alertBox.hidden = true; }, 10000);
  }

  function humanSize(bytes) {
    return bytes >= 1048576 ? Math.round(bytes / 104857.6) / 10 + " MB" : Math.max(1, Math.round(bytes / 1024)) + " KB";
  }

  function showStatus() {
    var text = live ? "" : (everOpened ? t("reconnecting") : t("connecting"));
    status.textContent = text;
    status.hidden = !text;
    shell.setAttribute("data-connected", live ? "true" : "false");
  }

  // -- sending -------------------------------------------------------------------------------------

  function savePending() { save("pending", JSON.stringify(pending)); }
  function dropPending(id) {
    pending = pending.filter(function (p) { return p.id !== id; });
    savePending();
  }

  function pendingNode(frame) {
    var node = messageNode({ sender: "patient", text: frame.text, client_id: frame.id, media: null });
    node.classList.add("cb-pending");
    return node;
  }

  function submit(parts) {
    var frame = { type: "send", id: newId(), text: parts.text || "", locale: locale };
    if (parts.value !== undefined) frame.value = parts.value;
    if (parts.question) frame.question = parts.question;
    if (parts.media) frame.media = parts.media;
    // over the limit, the server still takes a message that tells of an emergency (and refuses the rest)
    if (frame.text.length > maxEmergencyText) { showError("too_long", { limit: maxText }); return false; }
    pending.push(frame);
    savePending();
    logBox.appendChild(pendingNode(frame));
    scrollDown();
    transmit(frame);
    if (!live && !http) showError("offline");
    return true;
  }

  function transmit(frame) {
    if (live && ws) { ws.send(JSON.stringify(frame)); return; }
    if (http && token) {
      api("POST", "/webchat/api/send", frame).then(handle, function () { /* stays pending; resent later */ });
    }
  }

  // Not committed on our side: the message stays pending and goes again after a growing, jittered
  // pause (same id, so never doubled) — a few times, then it is marked failed. Never a resend loop.
  var resendTries = {};
  function retryLater(id) {
    var tries = (resendTries[id] || 0) + 1;
    if (tries > 5) { delete resendTries[id]; return false; }
    resendTries[id] = tries;
    var delay = Math.min(30000, 1000 * Math.pow(2, tries - 1)) * (0.5 + Math.random());
    setTimeout(function () {
      var frame = pending.filter(function (p) { return p.id === id; })[0];
      if (frame) transmit(frame);
    }, delay);
    return true;
  }

  function failPending(id) {
    var node = logBox.querySelector('.cb-pending[data-client-id="' + CSS.escape(id) + '"]');
    if (node) { node.classList.add("cb-failed"); relabel(node); }
    dropPending(id);
  }

  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var text = input.value;
    if (!text.trim()) return;
    if (submit({ text: text })) { input.value = ""; }
  });
  input.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); form.requestSubmit ? form.requestSubmit() : form.dispatchEvent(new Event("submit")); }
  });
  fileInput.addEventListener("change", function () {
    var file = fileInput.files && fileInput.files[0];
    fileInput.value = "";
    if (!file) return;
    if (file.size > maxUpload) { showError("too_large", { limit: maxUpload }); return; }
    if (!token || (!live && !http)) { showError("offline"); return; }
    fetch(ORIGIN + "/webchat/api/upload", { method: "POST", headers: { Authorization: "Bearer " + token }, body: file })
      .then(function (r) { return r.json().then(function (body) { return { ok: r.ok, body: body }; }); })
      .then(function (res) {
        if (!res.ok) { showError(res.body.code || "upload", res.body); return; }
        submit({ text: "", media: res.body.id });
      }, function () { showError("upload"); });
  });

  // -- receiving -------------------------------------------------------------------------------------

  // A new patient is greeted when the chat is first shown (the server greets a visitor once), so
  // nobody faces a blank page; an embedded widget nobody opens starts no conversation.
  var greeted = false;
  function greet() {
    if (greeted || !token || (MODE === "embed" && panel.hidden)) return;
    greeted = true;
    control({ type: "open", locale: locale });
  }

  function handle(frame) {
    if (!frame || typeof frame !== "object") return;
    switch (frame.type) {
      case "ready":
        token = frame.token;
        save("token", token);
        maxText = frame.max_text || maxText;
        maxEmergencyText = frame.max_emergency_text || maxText;
        maxUpload = frame.max_upload || maxUpload;
        if (alertBox.getAttribute("data-code") === "offline") alertBox.hidden = true;
        pending.forEach(transmit);  // typed while offline, or never acknowledged: same ids, so never doubled
        greet();
        break;
      case "message": if (frame.client_id) delete resendTries[frame.client_id]; show(frame); break;
      case "ack": dropPending(frame.id); break;
      case "typing":
        if (frame.on) showTyping((frame.sender || "").indexOf("staff:") === 0); else hideTyping();
        break;
      case "error":
        if (frame.code === "bad_token") { startOver(); showError("bad_token"); return; }
        if ((frame.code === "server_error" || frame.code === "unavailable") && frame.id && retryLater(frame.id)) { showError(frame.code, frame); return; }
        if (frame.id) failPending(frame.id);
        hideTyping();
        showError(frame.code, frame);
        break;
      default: break;
    }
  }

  function startOver() {
    // a forged or expired token was refused: begin a new conversation with a new session
    token = null;
    save("token", null);
    seen = {};
    contiguous = 0;
    sosBar.hidden = true;
    Array.prototype.forEach.call(logBox.querySelectorAll(".cb-msg:not(.cb-pending)"), function (n) { n.remove(); });
  }

  function wsUrl() { return ORIGIN.replace(/^http/, "ws") + "/webchat/ws"; }

  function connect() {
    clearTimeout(retryTimer);
    var opened = false;
    var socket;
    try { socket = new WebSocket(wsUrl()); } catch (e) { scheduleReconnect(); return; }
    ws = socket;
    socket.onopen = function () {
      opened = true;
      socket.send(JSON.stringify({ type: "hello", token: token || "", after: contiguous, locale: locale }));
    };
    socket.onmessage = function (e) {
      var frame;
      try { frame = JSON.parse(e.data); } catch (err) { return; }
      if (frame.type === "ready") { live = true; http = false; everOpened = true; showStatus(); }
      // a connection counts as healthy only once it carries a message: a server that accepts and
      // then drops every socket meets a growing pause, not a reconnect (and resend) loop
      if (frame.type === "message" || frame.type === "ack" || frame.type === "pong") failures = 0;
      handle(frame);
    };
    socket.onclose = function (e) {
      if (ws !== socket) return;
      live = false;
      ws = null;
      if (http) return;  // on the HTTP fallback: the poll loop tries the socket again now and then
      showStatus();
      if (e.code === 4401) { connect(); return; }  // token refused: start over at once
      if (e.code === 4403) { showError("forbidden"); return; }
      failures += 1;
      if (!everOpened && failures >= 4) { startHttp(); return; }  // WebSockets blocked: fall back to HTTP
      scheduleReconnect();
    };
  }

  function scheduleReconnect() {
    var delay = Math.min(30000, 300 * Math.pow(2, Math.min(failures, 7))) * (0.5 + Math.random());
    retryTimer = setTimeout(connect, delay);
  }

  // -- HTTP fallback: long polling where a proxy blocks WebSockets ---------------------------------

  function api(method, path, body) {
    var headers = { "Content-Type": "application/json" };
    if (token) headers.Authorization = "Bearer " + token;
    return fetch(ORIGIN + path, { method: method, headers: headers, body: body ? JSON.stringify(body) : undefined })
      .then(function (r) { return r.json().then(function (data) { if (r.status === 401) data.code = "bad_token"; return data; }); });
  }

  function startHttp() {
    http = true;
    api("POST", "/webchat/api/session", { token: token || "" }).then(function (res) {
      if (res.type === "error") {
        if (res.code === "bad_token") { startOver(); setTimeout(startHttp, 100); return; }
        setTimeout(startHttp, 3000);
        return;
      }
      live = false;
      everOpened = true;
      status.hidden = true;
      handle({ type: "ready", token: res.token, max_text: res.max_text, max_emergency_text: res.max_emergency_text,
               max_upload: res.max_upload });
      poll();
    }, function () { setTimeout(startHttp, 3000); });
  }

  var polls = 0;
  function poll() {
    if (!http) return;  // the socket is back
    polls += 1;
    if (polls % 3 === 0 && !ws) connect();  // every minute or so, see whether WebSockets work now
    api("GET", "/webchat/api/poll?after=" + contiguous).then(function (res) {
      (res.messages || []).forEach(show);
      poll();
    }, function () { setTimeout(poll, 2000); });
  }

  // -- start ---------------------------------------------------------------------------------------

  function mount() {
    var target = MODE === "page" ? (document.getElementById("carebot-chat") || document.body) : document.body;
    target.appendChild(host);
    applyLocale();
    pending.forEach(function (frame) { logBox.appendChild(pendingNode(frame)); });
    connect();
    if (MODE === "embed" && script.getAttribute("data-open") === "true") toggle(true);
    if (MODE === "page") input.focus();
  }

  window.carebotWebchat = { open: function () { toggle(true); }, close: function () { toggle(false); }, setLocale: setLocale };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", mount); else mount();
})();

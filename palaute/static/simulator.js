// palaute chat simulator. Plain JavaScript, no build step, no external requests.
// Each browser is one simulated contact: the server issues it a random session in an
// HttpOnly cookie (script never sees it), so a reload continues the same conversation.
(function () {
  "use strict";

  var data = JSON.parse(document.getElementById("simulator-data").textContent);
  var t = data.t;
  var PICK_KEY = "palaute.simulator.pick";

  var el = {
    form: document.getElementById("start-form"),
    flow: document.getElementById("flow"),
    language: document.getElementById("language"),
    start: document.getElementById("start"),
    session: document.getElementById("session-id"),
    newContact: document.getElementById("new-contact"),
    restart: document.getElementById("restart"),
    status: document.getElementById("status"),
    error: document.getElementById("error"),
    log: document.getElementById("log"),
    emptyChat: document.getElementById("empty-chat"),
    choices: document.getElementById("choices"),
    composer: document.getElementById("composer"),
    text: document.getElementById("composer-text"),
    send: document.getElementById("send"),
    runStatus: document.getElementById("run-status"),
    answers: document.getElementById("answers"),
    noAnswers: document.getElementById("no-answers"),
  };

  var state = { run: null, busy: false };

  function randomId(bytes) {
    var buf = new Uint8Array(bytes);
    window.crypto.getRandomValues(buf);
    return Array.prototype.map.call(buf, function (b) {
      return ("0" + b.toString(16)).slice(-2);
    }).join("");
  }

  function storageGet(key) {
    try { return window.localStorage.getItem(key); } catch (e) { return null; }
  }
  function storageSet(key, value) {
    try { window.localStorage.setItem(key, value); } catch (e) { /* private mode */ }
  }

  try { window.localStorage.removeItem("palaute.simulator.session"); } catch (e) { /* old id */ }

  function flowById(id) {
    for (var i = 0; i < data.flows.length; i++) {
      if (data.flows[i].id === id) { return data.flows[i]; }
    }
    return null;
  }

  function fillLanguages(preferred) {
    if (!el.flow) { return; }
    var flow = flowById(el.flow.value);
    el.language.innerHTML = "";
    if (!flow) { return; }
    var pick = flow.default_language;
    flow.languages.forEach(function (lang) {
      var option = document.createElement("option");
      option.value = lang.code;
      option.textContent = lang.name;
      option.lang = lang.code;
      el.language.appendChild(option);
      if (lang.code === preferred) { pick = preferred; }
    });
    el.language.value = pick;
  }

  function showError(message) {
    el.error.textContent = message;
    el.error.hidden = !message;
  }

  function addBubble(who, text, extraClass) {
    var item = document.createElement("li");
    item.className = "bubble " + who + (extraClass ? " " + extraClass : "");
    var label = document.createElement("span");
    label.className = "who";
    label.textContent = who === "bot" ? t.bot : t.you;
    var colon = document.createElement("span");
    colon.className = "visually-hidden";
    colon.textContent = ": ";
    label.appendChild(colon);
    var body = document.createElement("span");
    body.className = "text";
    body.textContent = text;
    item.appendChild(label);
    item.appendChild(body);
    el.log.appendChild(item);
    el.emptyChat.hidden = true;
    el.log.scrollTop = el.log.scrollHeight;
  }

  function clearChat() {
    el.log.innerHTML = "";
    el.emptyChat.hidden = false;
    showChoices([]);
  }

  function showChoices(choices) {
    el.choices.innerHTML = "";
    choices.forEach(function (choice) {
      var button = document.createElement("button");
      button.type = "button";
      button.className = "choice";
      button.textContent = choice.label;
      button.dataset.value = choice.value;
      button.addEventListener("click", function () {
        send(choice.value, "button", choice.label);
      });
      el.choices.appendChild(button);
    });
    el.choices.hidden = choices.length === 0;
  }

  function renderBotMessages(messages) {
    var lastChoices = [];
    messages.forEach(function (message) {
      addBubble("bot", message.text, message.kind === "reprompt" ? "reprompt" : "");
      lastChoices = message.choices || [];
    });
    return lastChoices;
  }

  function renderRun(run) {
    state.run = run;
    var active = !!run && run.status === "active";
    el.restart.disabled = !run;
    if (!active) { showChoices([]); }

    el.status.className = "status";
    el.runStatus.innerHTML = "";
    if (!run) {
      el.status.textContent = "";
    } else {
      var badge = document.createElement("span");
      badge.className = "badge " + run.status;
      badge.textContent = t["status_" + run.status] || run.status;
      el.runStatus.appendChild(document.createTextNode(run.flow_title + " (" + run.language + "): "));
      el.runStatus.appendChild(badge);
      if (run.status === "completed") {
        el.status.textContent = t.completed_note;
        el.status.className = "status completed";
      } else if (run.status === "active") {
        el.status.textContent = "";
      } else {
        el.status.textContent = t["closed_note_" + run.status] || t.closed_note;
        el.status.className = "status closed";
      }
    }

    var body = el.answers.querySelector("tbody");
    body.innerHTML = "";
    var answers = run ? run.answers : [];
    answers.forEach(function (answer) {
      var row = document.createElement("tr");
      row.dataset.step = answer.step_id;
      if (answer.skipped) { row.className = "skipped"; }
      var step = document.createElement("td");
      step.textContent = answer.step_id;
      if (answer.question) {
        var question = document.createElement("span");
        question.className = "question";
        question.textContent = answer.question;
        step.appendChild(question);
      }
      row.appendChild(step);
      var value = document.createElement("td");
      value.className = "value";
      value.textContent = answer.skipped ? t.skipped : JSON.stringify(answer.value);
      row.appendChild(value);
      var raw = document.createElement("td");
      raw.className = "raw";
      raw.textContent = answer.raw_text + (answer.truncated ? " " + t.truncated : "");
      row.appendChild(raw);
      body.appendChild(row);
    });
    el.answers.hidden = answers.length === 0;
    el.noAnswers.hidden = answers.length !== 0;
  }

  function api(url, payload) {
    var options = payload === undefined ? {} : {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(payload),
    };
    return fetch(url, options).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (body) {
        if (!response.ok) {
          throw new Error(body.error || t.error_server + " (" + response.status + ")");
        }
        return body;
      });
    }, function () {
      throw new Error(t.error_network);
    });
  }

  function setBusy(busy) {
    state.busy = busy;
    el.composer.setAttribute("aria-busy", busy ? "true" : "false");
    Array.prototype.forEach.call(el.choices.querySelectorAll("button"), function (b) {
      b.disabled = busy;
    });
    if (el.start) { el.start.disabled = busy; }
  }

  function afterReply(result) {
    var choices = renderBotMessages(result.messages || []);
    renderRun(result.run);
    var active = result.run && result.run.status === "active";
    showChoices(active ? choices : []);
    var first = el.choices.querySelector("button");
    if (first) { first.focus(); } else if (active) { el.text.focus(); } else { el.restart.focus(); }
  }

  function startRun(flowId, language) {
    if (state.busy) { return; }
    showError("");
    setBusy(true);
    storageSet(PICK_KEY, JSON.stringify({ flow: flowId, language: language }));
    api(data.api.start, { flow: flowId, language: language })
      .then(function (result) {
        clearChat();
        afterReply(result);
      })
      .catch(function (error) { showError(error.message); })
      .then(function () { setBusy(false); });
  }

  function send(text, kind, shown) {
    if (state.busy) { return; }
    if (kind === "text" && !text.trim()) { el.text.focus(); return; }
    showError("");
    addBubble("citizen", shown || text);
    showChoices([]);
    setBusy(true);
    api(data.api.message, { text: text, kind: kind, id: randomId(8) })
      .then(afterReply)
      .catch(function (error) { showError(error.message); })
      .then(function () { setBusy(false); });
  }

  function loadTranscript() {
    api(data.api.transcript)
      .then(function (result) {
        clearChat();
        var lastChoices = [];
        (result.messages || []).forEach(function (message) {
          if (message.direction === "in") {
            addBubble("citizen", message.text);
            lastChoices = [];
          } else {
            addBubble("bot", message.text);
            lastChoices = message.choices || [];
          }
        });
        renderRun(result.run);
        if (result.run && result.run.status === "active") { showChoices(lastChoices); }
        if (result.run && el.flow && flowById(result.run.flow_id)) {
          el.flow.value = result.run.flow_id;
          fillLanguages(result.run.language);
        }
      })
      .catch(function (error) { showError(error.message); });
  }

  // --- wiring ---------------------------------------------------------------------------
  if (el.form) {
    var pick = null;
    try { pick = JSON.parse(storageGet(PICK_KEY) || "null"); } catch (e) { pick = null; }
    if (pick && flowById(pick.flow)) { el.flow.value = pick.flow; }
    fillLanguages(pick ? pick.language : data.ui);
    el.flow.addEventListener("change", function () { fillLanguages(el.language.value); });
    el.form.addEventListener("submit", function (event) {
      event.preventDefault();
      startRun(el.flow.value, el.language.value);
    });
  }

  el.composer.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = el.text.value;
    if (!text.trim() || state.busy) { return; }
    el.text.value = "";
    send(text, "text");
  });

  el.restart.addEventListener("click", function () {
    var run = state.run;
    if (run) { startRun(run.flow_id, run.language); }
  });

  el.newContact.addEventListener("click", function () {
    if (state.busy) { return; }
    showError("");
    setBusy(true);
    api(data.api.new_contact, {})
      .then(function (result) {
        el.session.textContent = result.contact;
        clearChat();
        renderRun(null);
        if (el.flow) { el.flow.focus(); }
      })
      .catch(function (error) { showError(error.message); })
      .then(function () { setBusy(false); });
  });

  renderRun(null);
  loadTranscript();
})();

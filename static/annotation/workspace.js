/* Annotation workspace: keyboard-only operation, a draft (flags, comment, time) kept in localStorage
   so a reload loses nothing, and the per-item timer. The server stores a judgment before it sends the
   next item; this file never decides anything about the data. */
(function () {
  "use strict";

  var DRAFT_PREFIX = "refinery.annotation.draft.";
  var DRAFT_MAX_AGE_MS = 14 * 24 * 3600 * 1000;
  var flagMode = false;
  var busy = false;
  var itemStartedAt = Date.now();
  var pendingDraftKey = null;
  var ticker = null;
  var keyHintTimer = null;

  function workspace() { return document.getElementById("workspace"); }
  function judgeForm() { return document.getElementById("ws-form"); }

  function draftKey(form) {
    var ws = workspace();
    return DRAFT_PREFIX + ws.dataset.user + "." + ws.dataset.campaign + "." + form.dataset.item;
  }

  function readDraft(form) {
    try { return JSON.parse(window.localStorage.getItem(draftKey(form)) || "null"); } catch (e) { return null; }
  }

  function itemSeconds() { return Math.max(0, (Date.now() - itemStartedAt) / 1000); }

  function saveDraft() {
    var form = judgeForm();
    if (!form) return;
    var comment = form.querySelector("[name=comment]");
    var draft = {
      flags: Array.prototype.map.call(form.querySelectorAll("input[name=flags]:checked"), function (box) { return box.value; }),
      comment: comment ? comment.value : "",
      seconds: itemSeconds(),
      savedAt: Date.now()
    };
    try { window.localStorage.setItem(draftKey(form), JSON.stringify(draft)); } catch (e) { /* storage full or denied: the form still works */ }
  }

  function restoreDraft(form) {
    var draft = readDraft(form);
    if (!draft) return 0;
    form.querySelectorAll("input[name=flags]").forEach(function (box) { box.checked = draft.flags.indexOf(box.value) !== -1; });
    var comment = form.querySelector("[name=comment]");
    if (comment && typeof draft.comment === "string") comment.value = draft.comment;
    return Number(draft.seconds) || 0;
  }

  function dropOldDrafts() {
    try {
      for (var i = window.localStorage.length - 1; i >= 0; i--) {
        var key = window.localStorage.key(i);
        if (key && key.indexOf(DRAFT_PREFIX) === 0) {
          var draft = JSON.parse(window.localStorage.getItem(key) || "{}");
          if (!draft.savedAt || Date.now() - draft.savedAt > DRAFT_MAX_AGE_MS) window.localStorage.removeItem(key);
        }
      }
    } catch (e) { /* ignore */ }
  }

  function clock(seconds) {
    seconds = Math.floor(seconds);
    var minutes = Math.floor(seconds / 60);
    var hours = Math.floor(minutes / 60);
    var rest = ("0" + (seconds % 60)).slice(-2);
    return hours ? hours + ":" + ("0" + (minutes % 60)).slice(-2) + ":" + rest : minutes + ":" + rest;
  }

  function tick() {
    var form = judgeForm();
    var total = document.getElementById("ws-time-total");
    var seconds = form ? itemSeconds() : 0;
    if (form) {
      document.getElementById("ws-seconds").value = seconds.toFixed(1);
      var here = document.getElementById("ws-time-item");
      if (here) here.textContent = clock(seconds);
    }
    if (total) total.textContent = clock(Number(total.dataset.seconds || 0) + seconds);
  }

  function setFlagMode(on) {
    var flags = document.getElementById("ws-flags");
    flagMode = Boolean(on && flags);
    if (!flags) return;
    flags.classList.toggle("active", flagMode);
    var hint = document.getElementById("ws-flag-mode");
    if (hint) hint.hidden = !flagMode;
  }

  // A key pressed while the next item is on its way is never applied to an item the annotator has not
  // seen (nor lost unseen): the hint outside the workspace says which key was ignored and why.
  function showIgnoredKey(key) {
    var hint = document.getElementById("ws-key-hint");
    if (!hint) return;
    hint.textContent = "\u201c" + key + "\u201d was not applied: the next item was still loading. Read it, then press your choice again.";
    hint.hidden = false;
    if (keyHintTimer) window.clearTimeout(keyHintTimer);
    keyHintTimer = window.setTimeout(hideIgnoredKey, 8000);
  }

  function hideIgnoredKey() {
    var hint = document.getElementById("ws-key-hint");
    if (hint) hint.hidden = true;
    if (keyHintTimer) window.clearTimeout(keyHintTimer);
    keyHintTimer = null;
  }

  function toggleHelp(force) {
    var help = document.getElementById("ws-help");
    if (help) help.hidden = force === undefined ? !help.hidden : !force;
  }

  function init() {
    busy = false;
    setFlagMode(false);
    var form = judgeForm();
    var restoredSeconds = form ? restoreDraft(form) : 0;
    itemStartedAt = Date.now() - restoredSeconds * 1000;
    if (ticker) window.clearInterval(ticker);
    ticker = window.setInterval(function () { tick(); if (judgeForm() && itemSeconds() % 5 < 1) saveDraft(); }, 1000);
    tick();
    // Keys pressed before this point were ignored with a hint (busy): say when the new item takes them.
    if (form) form.dataset.ready = "true";
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || !workspace()) return;
    var target = event.target;
    var typing = target && (target.tagName === "TEXTAREA" || (target.tagName === "INPUT" && /^(text|search|email|number)$/.test(target.type)));
    if (typing) {
      if (event.key === "Escape") target.blur();
      return;
    }
    var key = event.key;
    if (key === "?") { toggleHelp(); event.preventDefault(); return; }
    if (key === "Escape") { toggleHelp(false); setFlagMode(false); return; }
    if (busy) {
      event.preventDefault();
      if (key.length === 1) showIgnoredKey(key);
      return;
    }
    if (key.length === 1) hideIgnoredKey();
    var form = judgeForm();
    if (key === "u") {
      var undo = document.querySelector("#ws-undo button[type=submit]");
      if (undo && !undo.disabled) undo.click();
      event.preventDefault();
      return;
    }
    if (!form) return;
    if (key === "f") { setFlagMode(!flagMode); event.preventDefault(); return; }
    if (key === "c") {
      var comment = document.getElementById("ws-comment");
      if (comment) { setFlagMode(false); comment.focus(); event.preventDefault(); }
      return;
    }
    if (/^[1-9]$/.test(key)) {
      event.preventDefault();
      if (flagMode) {
        var box = form.querySelectorAll("input[name=flags]")[Number(key) - 1];
        if (box) { box.checked = !box.checked; saveDraft(); }
        return;
      }
      var button = form.querySelector('button[name=choice][data-key="' + key + '"]');
      if (button) { tick(); button.click(); }
    }
  });

  document.addEventListener("click", function (event) {
    if (event.target.closest && event.target.closest("#ws-help-button")) toggleHelp();
    if (event.target.closest && event.target.closest("#ws-form button[name=choice]")) tick();
  }, true);
  document.addEventListener("input", function (event) { if (event.target.closest && event.target.closest("#ws-form")) saveDraft(); });
  document.addEventListener("change", function (event) { if (event.target.closest && event.target.closest("#ws-form")) saveDraft(); });

  document.addEventListener("htmx:beforeRequest", function (event) {
    if (!workspace() || !workspace().contains(event.target)) return;
    busy = true;
    var form = judgeForm();
    pendingDraftKey = form && event.target === form ? draftKey(form) : null;
  });
  document.addEventListener("htmx:beforeSwap", function (event) {
    // A refused answer (400 bad input, 409 lease lost or campaign closed) still carries the workspace to show.
    var status = event.detail.xhr.status;
    if (status === 400 || status === 409) { event.detail.shouldSwap = true; event.detail.isError = false; }
  });
  document.addEventListener("htmx:afterRequest", function (event) {
    if (event.detail.successful && pendingDraftKey) {
      try { window.localStorage.removeItem(pendingDraftKey); } catch (e) { /* ignore */ }
    }
    pendingDraftKey = null;
    if (!event.detail.successful) busy = false;
  });
  // Set up the new item after htmx has settled it, not after the swap: while settling, htmx puts back
  // the attributes of the new content on elements whose id it kept (#ws-flags among them), which
  // would wipe a flag mode opened in the ~20 ms between. Keys stay dropped (busy) until then.
  document.addEventListener("htmx:afterSettle", function () {
    var form = judgeForm();
    if (workspace() && !(form && form.dataset.ready === "true")) init();
  });
  document.addEventListener("htmx:responseError", function () { busy = false; });
  document.addEventListener("htmx:sendError", function () { busy = false; });

  dropOldDrafts();
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();

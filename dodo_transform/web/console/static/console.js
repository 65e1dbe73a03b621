// The console's behaviour: the editor, test runs and saves without a page load, keyboard
// shortcuts, and pages that keep themselves up to date. Every page works without it.
"use strict";

(function () {
  const LIVE_SECONDS = 5;
  const EVENT_FIELDS = "/console/event-fields.json";
  const ALIAS = /(?:const|let|var)\s+([A-Za-z_$][\w$]*)\s*=\s*([A-Za-z_$][\w$]*(?:\s*\.\s*[A-Za-z_$][\w$]*)*)\s*[;\n]/g;
  let editor = null;

  function setUpEditor(form) {
    const textarea = form.querySelector("#source");
    const holder = form.querySelector("#editor");
    if (!textarea || !holder || !window.DodoEditor) return;
    const nonce = document.querySelector('meta[name="style-nonce"]');
    const fields = eventFields(form);
    editor = window.DodoEditor.create(holder, {
      doc: textarea.value,
      nonce: nonce ? nonce.content : "",
      language: "javascript",
      label: "transform source",
      onChange: (text) => (textarea.value = text),
      onRun: () => send(form, "test"),
      onSave: () => send(form, "save"),
      members: (path) => fields.members(path, editor),
      describe: (path) => fields.describe(path, editor),
    });
    holder.classList.add("enhanced");
  }

  // The fields of Dodo's event types (/console/event-fields.json, loaded once): what the
  // editor completes after `webhook.`, `webhook.payload.` and `webhook.payload.data.` for the
  // chosen sample's event type, and shows on hover. The webhook is the handler's parameter,
  // whatever it is called.
  function eventFields(form) {
    let known = null;
    fetch(EVENT_FIELDS, { credentials: "same-origin" })
      .then((answer) => (answer.ok ? answer.json() : null))
      .then((found) => (known = found))
      .catch(() => {}); // no completion, the editor works all the same

    function chosenType() {
      const sample = form.querySelector("#sample");
      const option = sample && sample.selectedOptions[0];
      if (option && option.dataset.eventType) return option.dataset.eventType;
      try {
        return JSON.parse(form.querySelector("#custom").value).type; // the custom body
      } catch (error) {
        return null;
      }
    }

    function parameterName(view) {
      const found = /function\s+handler\s*\(\s*([A-Za-z_$][\w$]*)/.exec(view.getValue());
      return found ? found[1] : "webhook";
    }

    // `const p = webhook.payload.data;`, as Dodo's docs write it: `p.` is completed too.
    function expanded(path, view) {
      const aliases = new Map();
      for (const found of view.getValue().matchAll(ALIAS)) {
        aliases.set(found[1], found[2].split(".").map((part) => part.trim()));
      }
      for (let step = 0; step < 5 && aliases.has(path[0]); step++) {
        path = [...aliases.get(path[0]), ...path.slice(1)];
      }
      return path;
    }

    // The members at `path` (["webhook", "payload", "data", "customer"]), or null.
    function membersAt(path, view) {
      const type = chosenType();
      path = expanded(path, view);
      if (!known || path[0] !== parameterName(view)) return null;
      let members = known.webhook;
      for (const [depth, name] of path.slice(1).entries()) {
        if (depth === 0 && name === "payload") {
          members = known.payloads[type];
        } else if (depth === 1 && name === "data") {
          members = known.data[known.kinds[type]];
        } else {
          const found = (members || []).find((member) => member.name === name);
          members = found && found.members;
        }
        if (!members) return null;
      }
      return members;
    }

    return {
      members: (path, view) => membersAt(path, view),
      describe(path, view) {
        const members = membersAt(path.slice(0, -1), view);
        return (members || []).find((member) => member.name === path[path.length - 1]) || null;
      },
    };
  }

  function targetOf(action) {
    return document.getElementById(`${action}-result`);
  }

  // What the editor held when the file was last written, and when a test run last ended in
  // an error: leaving with unsaved edits, or saving code whose test just failed, asks first.
  const edits = { saved: null, failed: null };

  function currentText(form) {
    return editor ? editor.getValue() : form.querySelector("#source").value;
  }

  function confirmsSave(form) {
    if (edits.failed === null || edits.failed !== currentText(form)) return true;
    return window.confirm(
      "The last test run of this code ended in an error. Save it anyway? " +
        "(A version that does not compile is not put in service; one that throws is.)"
    );
  }

  function noteOutcome(action, target, sent) {
    if (action === "test") {
      edits.failed = target.querySelector('[data-outcome="error"]') ? sent : null;
    } else if (action === "save" && target.querySelector('[data-written="yes"]')) {
      edits.saved = sent;
      const history = document.getElementById("version-list");
      if (history) refreshPart(history); // the new version, listed now rather than at the next tick
    }
  }

  async function send(form, action) {
    const button = form.querySelector(`[data-action="${action}"]`);
    const target = targetOf(action);
    if (!button || button.disabled) return;
    if (editor) form.querySelector("#source").value = editor.getValue();
    if (action === "save" && !confirmsSave(form)) return;
    const sent = form.querySelector("#source").value;
    button.disabled = true;
    target.setAttribute("aria-busy", "true");
    target.classList.add("busy");
    try {
      const answer = await fetch(button.getAttribute("formaction") || form.action, {
        method: "POST",
        body: new FormData(form),
        headers: { "X-Console-Fragment": "1" },
        credentials: "same-origin",
      });
      if (answer.redirected) {
        window.location.assign(answer.url); // the session ended: the login page
        return;
      }
      target.innerHTML = await answer.text();
      noteOutcome(action, target, sent);
      if (action === "save") showVersion(target);
    } catch (error) {
      target.textContent = `Could not reach the server: ${error.message}`;
    } finally {
      button.disabled = false;
      target.removeAttribute("aria-busy");
      target.classList.remove("busy");
    }
  }

  function showVersion(target) {
    const live = target.querySelector('[data-state="live"] code');
    const shown = document.querySelector('[data-testid="version"]');
    if (live && shown) shown.textContent = live.textContent;
  }

  function setUpWorkbench() {
    const form = document.getElementById("transform-form");
    if (!form) return;
    setUpEditor(form);
    edits.saved = currentText(form);
    window.addEventListener("beforeunload", (event) => {
      if (currentText(form) === edits.saved) return;
      event.preventDefault();
      event.returnValue = ""; // what older browsers need to ask
    });
    form.addEventListener("submit", (event) => {
      const action = event.submitter && event.submitter.dataset.action;
      if (!action) return;
      event.preventDefault();
      send(form, action);
    });
    const sample = form.querySelector("#sample");
    const custom = document.getElementById("custom-box");
    const showCustom = () => custom.classList.toggle("hidden", sample.value !== "custom");
    sample.addEventListener("change", showCustom);
    showCustom();
    document.addEventListener("keydown", (event) => {
      if (!(event.ctrlKey || event.metaKey)) return;
      if (event.key === "Enter") {
        event.preventDefault();
        send(form, "test");
      } else if (event.key === "s" || event.key === "S") {
        event.preventDefault();
        send(form, "save");
      }
    });
    document.addEventListener("click", (event) => {
      const go = event.target.closest(".go-to");
      if (go && editor) editor.goTo(Number(go.dataset.line), Number(go.dataset.column));
    });
  }

  // Elements with `data-live` and an id are refreshed from their page every few seconds;
  // a replay result stops once nothing in it is still moving.
  async function refreshPart(part) {
    try {
      const answer = await fetch(part.dataset.live, { credentials: "same-origin" });
      if (!answer.ok || answer.redirected) return;
      const fresh = new DOMParser()
        .parseFromString(await answer.text(), "text/html")
        .getElementById(part.id);
      if (fresh && fresh.innerHTML !== part.innerHTML) part.innerHTML = fresh.innerHTML;
      if (part.dataset.until && !part.querySelector(part.dataset.until)) {
        part.dataset.settled = "1";
      }
    } catch (error) {
      // The server is restarting: try again next time.
    }
  }

  function setUpLive() {
    const parts = Array.from(document.querySelectorAll("[data-live][id]"));
    if (!parts.length) return;
    const refresh = async () => {
      if (document.hidden) return;
      for (const part of parts) {
        if (!part.dataset.settled) await refreshPart(part);
      }
    };
    window.setInterval(refresh, LIVE_SECONDS * 1000);
  }

  document.addEventListener("DOMContentLoaded", () => {
    setUpWorkbench();
    setUpLive();
  });
})();

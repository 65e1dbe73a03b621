// The console's editor: CodeMirror 6 with the JavaScript and JSON modes, and completion of
// object members the page describes (`options.members`: the fields of `webhook.payload.data.`
// for the chosen sample's event type) with their type and an example on hover
// (`options.describe`). No bracket closing and no completion of anything else: what a person
// (or a test) types is what the file holds, unless a member list is open and Enter picks one.
// Bundled by ../build_editor.sh into dodo_transform/web/console/static/editor.js, which sets
// `window.DodoEditor`.
import { autocompletion } from "@codemirror/autocomplete";
import { defaultKeymap, history, historyKeymap, indentWithTab } from "@codemirror/commands";
import { javascript } from "@codemirror/lang-javascript";
import { json } from "@codemirror/lang-json";
import {
  bracketMatching,
  defaultHighlightStyle,
  indentOnInput,
  syntaxHighlighting,
  syntaxTree,
} from "@codemirror/language";
import { highlightSelectionMatches, searchKeymap } from "@codemirror/search";
import { EditorSelection, EditorState } from "@codemirror/state";
import {
  drawSelection,
  EditorView,
  hoverTooltip,
  highlightActiveLine,
  highlightActiveLineGutter,
  highlightSpecialChars,
  keymap,
  lineNumbers,
} from "@codemirror/view";

// Typing over a selection: done as a transaction instead of leaving it to the browser, whose
// own editing of several lines adds a styled element that a strict Content-Security-Policy
// refuses (and reports as an error) before CodeMirror redraws the text.
const typeOverSelection = EditorView.domEventHandlers({
  keydown(event, view) {
    const plain = !event.ctrlKey && !event.metaKey && !event.altKey && !event.isComposing;
    if (!plain || event.key.length !== 1 || view.state.selection.main.empty) return false;
    view.dispatch(view.state.replaceSelection(event.key), {
      scrollIntoView: true,
      userEvent: "input.type",
    });
    event.preventDefault();
    return true;
  },
});

// A member chain ending at `pos`: `webhook . payload.data.cu` gives the path
// ["webhook", "payload", "data"] and the prefix "cu" (spaces around the dots, as Dodo's docs
// print them, and `?.` are allowed). None inside a string or a comment.
const CHAIN = /((?:[A-Za-z_$][\w$]*\s*\??\.\s*)+)([A-Za-z_$][\w$]*)?$/;
const NOT_CODE = new Set(["String", "TemplateString", "LineComment", "BlockComment"]);

function chainBefore(state, pos) {
  if (NOT_CODE.has(syntaxTree(state).resolveInner(pos, -1).name)) return null;
  const line = state.doc.lineAt(pos);
  const found = CHAIN.exec(line.text.slice(0, pos - line.from));
  if (!found) return null;
  const path = found[1].split(/\s*\??\.\s*/).filter(Boolean);
  return { path, prefix: found[2] || "" };
}

function memberCompletions(members) {
  return (context) => {
    const chain = chainBefore(context.state, context.pos);
    const found = chain && members(chain.path);
    if (!found || found.length === 0) return null;
    return {
      from: context.pos - chain.prefix.length,
      options: found.map((member) => ({
        label: member.name,
        type: "property",
        detail: member.type,
        info: member.example === undefined ? undefined : `example: ${member.example}`,
      })),
      validFor: /^[\w$]*$/,
    };
  };
}

// The type and example of the member under the pointer.
function memberHover(describe) {
  return hoverTooltip((view, pos) => {
    const word = view.state.wordAt(pos);
    const chain = word && chainBefore(view.state, word.from);
    if (!chain || chain.prefix) return null;
    const name = view.state.sliceDoc(word.from, word.to);
    const found = describe([...chain.path, name]);
    if (!found) return null;
    return {
      pos: word.from,
      end: word.to,
      above: true,
      create() {
        const dom = document.createElement("div");
        dom.className = "cm-member-info";
        const title = document.createElement("code");
        title.textContent = `${name}: ${found.type}`;
        dom.append(title);
        if (found.example !== undefined) {
          const example = document.createElement("div");
          example.textContent = `example: ${found.example}`;
          dom.append(example);
        }
        return { dom };
      },
    };
  });
}

function create(parent, options) {
  const shortcuts = [];
  if (options.onRun) shortcuts.push({ key: "Mod-Enter", run: () => (options.onRun(), true) });
  if (options.onSave) shortcuts.push({ key: "Mod-s", run: () => (options.onSave(), true) });
  const view = new EditorView({
    parent,
    state: EditorState.create({
      doc: options.doc || "",
      extensions: [
        lineNumbers(),
        highlightActiveLineGutter(),
        highlightSpecialChars(),
        history(),
        drawSelection(),
        indentOnInput(),
        bracketMatching(),
        highlightActiveLine(),
        highlightSelectionMatches(),
        typeOverSelection,
        syntaxHighlighting(defaultHighlightStyle, { fallback: true }),
        options.members
          ? autocompletion({ override: [memberCompletions(options.members)], icons: false })
          : [],
        options.describe ? memberHover(options.describe) : [],
        keymap.of([...shortcuts, ...defaultKeymap, ...historyKeymap, ...searchKeymap, indentWithTab]),
        options.language === "json" ? json() : javascript(),
        // The page's Content-Security-Policy allows this nonce's <style> (CodeMirror's theme).
        options.nonce ? EditorView.cspNonce.of(options.nonce) : [],
        EditorView.contentAttributes.of({ "aria-label": options.label || "code" }),
        EditorView.updateListener.of((update) => {
          if (update.docChanged && options.onChange) options.onChange(update.state.doc.toString());
        }),
      ],
    }),
  });
  return {
    view,
    getValue: () => view.state.doc.toString(),
    setValue: (text) =>
      view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: text } }),
    focus: () => view.focus(),
    // Put the cursor at a 1-based line and column (an error's position) and show it.
    goTo(line, column) {
      const doc = view.state.doc;
      const at = doc.line(Math.min(Math.max(line, 1), doc.lines));
      const pos = Math.min(at.from + Math.max(column - 1, 0), at.to);
      view.dispatch({
        selection: EditorSelection.cursor(pos),
        effects: EditorView.scrollIntoView(pos, { y: "center" }),
      });
      view.focus();
    },
  };
}

window.DodoEditor = { create };

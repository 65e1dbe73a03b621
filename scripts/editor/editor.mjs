// The console's editor: CodeMirror 6 with the JavaScript and JSON modes, and no more.
// No autocompletion or bracket closing: what a person (or a test) types is what the file holds.
// Bundled by ../build_editor.sh into dodo_transform/web/console/static/editor.js, which sets
// `window.DodoEditor`.
import { defaultKeymap, history, historyKeymap, indentWithTab } from "@codemirror/commands";
import { javascript } from "@codemirror/lang-javascript";
import { json } from "@codemirror/lang-json";
import {
  bracketMatching,
  defaultHighlightStyle,
  indentOnInput,
  syntaxHighlighting,
} from "@codemirror/language";
import { highlightSelectionMatches, searchKeymap } from "@codemirror/search";
import { EditorSelection, EditorState } from "@codemirror/state";
import {
  drawSelection,
  EditorView,
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

"""The web console: edit and test transforms, watch deliveries, replay, in the browser.

Face: `mount.install(app)` adds its routes, its static files (`/static/console/`)
and its error pages to the app. Pages are server-rendered (Jinja2) and read through
the store; replays are only asked for (`Store.request_replays`), and the one
place user JavaScript runs is a test run, in a sandbox process of its own. The
editor is CodeMirror 6, bundled once by `scripts/build_editor.sh` and shipped
in `static/`: nothing is fetched from another origin.

Modules: `mount` (the face), `pages` (what is read), `actions` (test, save, replay), `login` and
`session` (who may), `reading` and `summaries` (what the pages count),
`trials` (test runs), `runs` (how many at once, and on which threads), `samples` (the sample
chooser), `files` (the transforms folder), `charts` (SVG bars), `rendering` (templates and
security headers).
"""

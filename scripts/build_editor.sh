#!/usr/bin/env bash
# Bundle the console's code editor (CodeMirror 6, scripts/editor/) into one file shipped in the
# package: dodo_transform/web/console/static/editor.js. Run it after changing the versions in
# scripts/editor/package.json; commit package-lock.json and the bundle. Installing and running
# the service never needs npm.
set -euo pipefail
cd "$(dirname "$0")/editor"
npm ci --no-audit --no-fund --loglevel=error
out=../../dodo_transform/web/console/static/editor.js
npx --no-install esbuild editor.mjs --bundle --minify --format=iife --target=es2020 \
  --legal-comments=none --log-level=warning --outfile="$out"
# Name what is inside, so the committed file says which versions it holds.
{
  echo "/* dodo-transform console editor, built by scripts/build_editor.sh from:"
  node -e 'const p = require("./package-lock.json").packages;
    for (const [k, v] of Object.entries(p))
      if (k.startsWith("node_modules/") && !v.dev) console.log(" * " + k.slice(13) + " " + v.version);'
  echo " * (MIT licensed) */"
  cat "$out"
} > "$out.tmp" && mv "$out.tmp" "$out"
echo "wrote $(wc -c < "$out") bytes to dodo_transform/web/console/static/editor.js"

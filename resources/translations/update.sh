#!/usr/bin/env bash
# Refresh the translation catalogs from every tr() in app/ui, then build the .qm files.
# New strings arrive "unfinished" in the .ts: translate them (pyside6-linguist, or by hand),
# then run this again. English is the source language: its catalog holds plural forms only.
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=.venv/bin
dir=resources/translations
"$bin/pyside6-lupdate" app/ui/*.py -ts "$dir/tray_notifier_zh_CN.ts" \
  -source-language en -target-language zh_CN -no-obsolete -locations relative
"$bin/pyside6-lupdate" app/ui/*.py -ts "$dir/tray_notifier_en.ts" \
  -source-language en -target-language en -pluralonly -no-obsolete -locations relative
for ts in "$dir"/*.ts; do
  "$bin/pyside6-lrelease" "$ts" -qm "${ts%.ts}.qm"
done

#!/usr/bin/env bash
# The README's first command: installs dependencies, builds emosweep, generates
# synthetic corpora, runs the quick-start protocol and prints its table.
# Everything it writes goes under ${OUT:-quickstart-out}/.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-quickstart-out}
scripts/install-deps.sh
BUILD_DIR=${BUILD_DIR:-build} scripts/build.sh emosweep
ES=${BUILD_DIR:-build}/bin/emosweep

mkdir -p "$OUT"
echo "== 1/4 synthetic corpora -> $OUT/stores"
"$ES" data synth --out "$OUT/stores" --seed 7
for f in "$OUT"/stores/*.h5; do "$ES" data inspect "$f" --log-level warn | head -n 4; done

echo "== 2/4 plan"
"$ES" plan protocols/library/quickstart.toml --store-dir "$OUT/stores" --ledger "$OUT/ledger.sqlite"

echo "== 3/4 run (resumable: re-running skips finished jobs)"
"$ES" run protocols/library/quickstart.toml --store-dir "$OUT/stores" --ledger "$OUT/ledger.sqlite" \
  --work-dir "$OUT/work"

echo "== 4/4 tables and report"
"$ES" table protocols/library/quickstart.toml --store-dir "$OUT/stores" --ledger "$OUT/ledger.sqlite" \
  --all --format markdown | tee "$OUT/tables.md"
"$ES" report protocols/library/quickstart.toml --store-dir "$OUT/stores" --ledger "$OUT/ledger.sqlite" \
  --out "$OUT/report.html"

cat <<MSG

Done. Results:
  ledger (SQLite):  $OUT/ledger.sqlite   (emosweep ledger status --ledger $OUT/ledger.sqlite)
  tables:           $OUT/tables.md
  report:           $OUT/report.html
  feature stores:   $OUT/stores/
MSG

#!/usr/bin/env bash
# `emosweep list` and the protocol library found by name, from a build tree and
# from an installed tree (cmake --install), from any working directory.
# Usage: list_cli_test.sh EMOSWEEP_BINARY BUILD_DIR
set -euo pipefail
BIN=$1
BUILD=$2
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
cd "$W"  # nothing relative to the checkout

for what in models label-maps feature-sets adapters da-variants protocols; do
  "$BIN" list "$what" > "$W/$what.txt" || fail "list $what"
  "$BIN" list "$what" --json > "$W/$what.json" || fail "list $what --json"
  n=$(sqlite3 :memory: "SELECT json_array_length(readfile('$W/$what.json'), '$.items')")
  [ "$n" -gt 0 ] || fail "list $what --json has no items"
done
grep -q '^  concat_mlp ' "$W/models.txt" || fail "list models lacks concat_mlp"
[ "$(sqlite3 :memory: "SELECT json_extract(value, '$.name') FROM json_each(readfile('$W/models.json'), '$.items') WHERE json_extract(value, '$.name') = 'concat_mlp'")" = concat_mlp ] \
  || fail "list models --json"
sqlite3 :memory: "SELECT count(*) FROM json_each(readfile('$W/models.json'), '$.items[0].keys')" | grep -qv '^0$' \
  || fail "list models --json has no config keys"
grep -q 'core4' "$W/label-maps.txt" || fail "list label-maps lacks core4"
grep -q 'emodb' "$W/adapters.txt" || fail "list adapters lacks emodb"
grep -q 'dann_ganin' "$W/da-variants.txt" || fail "list da-variants lacks dann_ganin"
grep -q '^  quickstart ' "$W/protocols.txt" || fail "list protocols lacks quickstart"
if "$BIN" list nonsense 2> "$W/err.txt"; then fail "list nonsense exited 0"; fi
grep -q "unknown WHAT 'nonsense'" "$W/err.txt" || fail "list nonsense: message"

# Results that could not be written (a full disk behind `>`, a closed stdout) fail the command (it said exit 0).
set +e
"$BIN" list models --json > /dev/full 2> "$W/err.txt"; rc_full=$?
"$BIN" version >&- 2> "$W/err2.txt"; rc_closed=$?
set -e
[ "$rc_full" = 1 ] || fail "list > /dev/full: exit $rc_full, want 1"
grep -q "writing to standard output failed" "$W/err.txt" || fail "list > /dev/full: message: $(cat "$W/err.txt")"
[ "$rc_closed" = 1 ] || fail "version with stdout closed: exit $rc_closed, want 1"
grep -q "Bad file descriptor" "$W/err2.txt" || fail "closed stdout: message: $(cat "$W/err2.txt")"
# Option names are not guessed from a prefix (Boost's default took --js for --json).
set +e
"$BIN" list models --js > /dev/null 2> "$W/err3.txt"; rc_prefix=$?
set -e
[ "$rc_prefix" = 2 ] && grep -q "unrecognised option '--js'" "$W/err3.txt" || fail "--js: exit $rc_prefix, $(cat "$W/err3.txt")"
# A missing positional argument is named as such (it read "the option '--what' is required but missing").
set +e
"$BIN" list 2> "$W/err4.txt"; rc_missing=$?
set -e
[ "$rc_missing" = 2 ] && grep -q "missing argument WHAT" "$W/err4.txt" || fail "list without WHAT: exit $rc_missing, $(cat "$W/err4.txt")"
# A command group's --help is asked for: stdout, exit 0 (it was a usage error on stderr).
"$BIN" data --help > "$W/group.txt" || fail "data --help: exit $?"
grep -q "data import" "$W/group.txt" || fail "data --help lists no commands"

# By name from any directory (the build tree's binary finds the source library).
"$BIN" plan quickstart --store-dir "$W/none" --json > "$W/plan.json"
[ "$(sqlite3 :memory: "SELECT json_extract(readfile('$W/plan.json'), '$.protocol')")" = quickstart ] || fail "plan by name"
# A directory of the same name does not hide the library protocol ("quickstart: is a directory").
mkdir "$W/quickstart"
"$BIN" plan quickstart --store-dir "$W/none" --json > "$W/plan2.json" || fail "plan quickstart beside a directory quickstart/"
rmdir "$W/quickstart"
set +e
"$BIN" plan no_such_protocol 2> "$W/err.txt"
rc=$?
set -e
[ "$rc" = 2 ] || fail "unknown protocol name: exit $rc, want 2"
grep -q "no such protocol file, and no library protocol of that name" "$W/err.txt" || fail "unknown name: message"
grep -q "quickstart" "$W/err.txt" || fail "unknown name: the message does not list the library"

# $EMOSWEEP_PROTOCOL_PATH comes first.
mkdir "$W/mine"
sed 's/^description = .*/description = "my own quickstart"/' "$(sqlite3 :memory: "SELECT json_extract(value, '$.path') FROM json_each(readfile('$W/protocols.json'), '$.items') WHERE json_extract(value, '$.name') = 'quickstart'")" \
  > "$W/mine/quickstart.toml"
EMOSWEEP_PROTOCOL_PATH="$W/mine" "$BIN" list protocols | grep -q 'quickstart *my own quickstart' || fail "EMOSWEEP_PROTOCOL_PATH not first"

# An installed tree finds its own copy (<prefix>/share/emosweep/protocols).
cmake --install "$BUILD" --prefix "$W/prefix" --component Unspecified > /dev/null || fail "cmake --install"
[ -f "$W/prefix/share/emosweep/protocols/quickstart.toml" ] || fail "install did not copy the library"
"$W/prefix/bin/emosweep" list protocols --json > "$W/installed.json"
first=$(sqlite3 :memory: "SELECT json_extract(value, '$.path') FROM json_each(readfile('$W/installed.json'), '$.items') WHERE json_extract(value, '$.name') = 'quickstart'")
case "$first" in
  "$W/prefix/share/emosweep/protocols/quickstart.toml") ;;
  *) fail "installed binary used $first, not its own library" ;;
esac
echo "list cli: ok"

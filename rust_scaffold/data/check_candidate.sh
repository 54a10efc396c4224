#!/usr/bin/env bash
# End-to-end check of the candidate contract: make a candidate crate from template/ outside the
# workspace, build it offline and frozen, run a plan through it.
# Usage: data/check_candidate.sh [workdir]   (default: a fresh temporary directory)
set -euo pipefail
SCAFFOLD="$(cd "$(dirname "$0")/.." && pwd)"
WORK="${1:-$(mktemp -d)}"
NAME=cand-example
CRATE="$WORK/$NAME"
mkdir -p "$CRATE/src"
sed -e "s|{{name}}|$NAME|g" -e "s|{{scaffold}}|$SCAFFOLD|g" "$SCAFFOLD/template/Cargo.toml.in" > "$CRATE/Cargo.toml"
sed -e "s|{{name}}|$NAME|g" "$SCAFFOLD/template/Cargo.lock.in" > "$CRATE/Cargo.lock"
cp "$SCAFFOLD/template/main.rs" "$CRATE/src/main.rs"
cp "$SCAFFOLD/template/optimizer.rs" "$CRATE/src/optimizer.rs"
export CARGO_TARGET_DIR="$WORK/target"
(cd "$CRATE" && cargo build --release --offline --frozen --quiet)
BIN="$CARGO_TARGET_DIR/release/$NAME"
"$BIN" list | grep -q '"optimizers":\["candidate"'
OUT=$(printf '%s\n' \
  "id=1 optimizer=candidate problem=rosenbrock-10 lr=0.001 seed=1 steps=300 curve_points=10" \
  "id=2 optimizer=candidate problem=logreg-breast-cancer lr=0.01 seed=1 steps=300 curve_points=5" \
  "id=3 optimizer=adam problem=quadratic-ill-50 lr=0.1 seed=1 steps=300 curve_points=5" | "$BIN" run)
echo "$OUT"
[ "$(echo "$OUT" | grep -c '"diverged":false,"time_limited":false,"error":null')" -eq 3 ] || { echo "candidate check FAILED"; exit 1; }
echo "candidate check ok ($CRATE)"

#!/usr/bin/env bash
# Mutation testing of the Rust harness's run loop (issue 17; docs/mutation.md, "The Rust runner").
#
#   scripts/mutants_rust.sh                 # every mutant of crates/bench/src/runner.rs (40-60 min, 1 job)
#   MUTANTS_JOBS=2 scripts/mutants_rust.sh  # two builds/tests at once (needs ~2 free cores)
#   scripts/mutants_rust.sh --list          # extra arguments go to cargo-mutants (e.g. --list, -F REGEX)
#
# Tool: cargo-mutants (27.1.0 here; installed if missing with `cargo install cargo-mutants --locked`;
# CI does not run it). It copies rust_scaffold/ (without target/) to a scratch directory, as it is
# on disk, uncommitted edits included, and for each mutant of runner.rs builds frontier-bench in the
# release profile and runs its fast tier: the library's unit tests (src/tests.rs and the modules'
# own) and its integration tests (tests/*.rs), no doctests. A mutant is "caught" when a test fails,
# "missed" when all pass, "timeout" after 120 s, "unviable" when it does not compile.
#
# `version_table_is_pinned` is skipped: it pins the problems' and baselines' versions, cannot see
# runner.rs, and must not block the unmutated baseline while a version bump is in flight.
#
# Output: mutants.out/ at the repository root (git-ignored): caught.txt, missed.txt, timeout.txt,
# unviable.txt, outcomes.json, and a log per mutant under log/.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT/rust_scaffold"

cargo mutants --version >/dev/null 2>&1 || cargo install cargo-mutants --locked

exec cargo mutants \
    --package frontier-bench \
    --file crates/bench/src/runner.rs \
    --profile release \
    --jobs "${MUTANTS_JOBS:-1}" \
    --timeout 120 \
    --output "$ROOT" \
    --no-shuffle \
    "$@" \
    -- --lib --tests -- --skip version_table_is_pinned

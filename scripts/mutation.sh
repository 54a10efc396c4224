#!/usr/bin/env bash
# Mutation testing of the Python verdict path (issue 17; docs/mutation.md).
#
#   scripts/mutation.sh            # mutate, run the fast tier against every mutant, print the score
#   MUTATION_JOBS=1 scripts/mutation.sh    # fewer parallel workers (default 2)
#   mutmut show <mutant name>      # afterwards: the diff of one mutant
#
# Tool: mutmut 3 (installed here if missing; CI does not run this). Its configuration is
# `[tool.mutmut]` in pyproject.toml: the files mutated and the test selection, which is the fast
# tier (`-m "not slow"`). mutmut runs, for each mutant, only the fast tests that execute the mutated
# function, in a copy of the tree under mutants/ (git-ignored; deleted first, so every run is fresh).
#
# Mutated: all of stats.py, protocol/judging.py, holdout.py, protocol/error_control.py; of
# protocol/report.py class_outcome and holdout_passed; of tools/record_result.py refusal and
# spend_claim_test; of protocol/tuning.py the score a setting is chosen by (_score), the
# grid's extension (extension_point, grid_bounds) and the edge flags (edges_of, _to_unit).
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH=src

python3 -c "import mutmut" 2>/dev/null || python3 -m pip install -q "mutmut>=3.3,<4"

TARGETS=(
    "frontier_mcp.stats.*"
    "frontier_mcp.protocol.judging.*"
    "frontier_mcp.protocol.report.x_class_outcome__mutmut_*"
    "frontier_mcp.protocol.report.x_holdout_passed__mutmut_*"
    "frontier_mcp.holdout.*"
    "frontier_mcp.protocol.error_control.*"
    "frontier_mcp.tools.record_result.x_refusal__mutmut_*"
    "frontier_mcp.tools.record_result.x_spend_claim_test__mutmut_*"
    "frontier_mcp.protocol.tuning.x__score__mutmut_*"
    "frontier_mcp.protocol.tuning.x_extension_point__mutmut_*"
    "frontier_mcp.protocol.tuning.x_grid_bounds__mutmut_*"
    "frontier_mcp.protocol.tuning.x_edges_of__mutmut_*"
    "frontier_mcp.protocol.tuning.x__to_unit__mutmut_*"
)

# The fast tier must pass unmutated first (mutmut checks it too, on the selected tests only).
python3 -m pytest -q -m "not slow" -x -p no:cacheprovider >/dev/null

rm -rf mutants
mutmut run --max-children "${MUTATION_JOBS:-2}" "${TARGETS[@]}" >mutants.log 2>&1 || {
    tail -n 40 mutants.log; exit 1; }

# The score over the selected mutants only (the files' other functions are generated but not run).
mutmut results --all true >mutants/results.txt
python3 - mutants/results.txt "${TARGETS[@]}" <<'PY'
import fnmatch
import sys
from collections import Counter

targets = sys.argv[2:]
status: dict[str, str] = {}
for line in open(sys.argv[1]):
    name, _, result = line.strip().rpartition(": ")
    if name and any(fnmatch.fnmatch(name, t) for t in targets):
        status[name] = result
counts = Counter(status.values())
killed = counts["killed"] + counts["timeout"] + counts["caught by type check"] + counts["segfault"]
total = sum(counts.values())
print("mutants:", total, dict(sorted(counts.items())))
print(f"score: {killed}/{total} killed = {100 * killed / max(total, 1):.1f}%")
for name in sorted(n for n, s in status.items() if s != "killed"):
    print(f"  {status[name]}: {name}")
PY

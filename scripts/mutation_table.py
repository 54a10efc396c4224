#!/usr/bin/env python3
"""The table of surviving mutants in docs/mutation.md, from mutmut's last run (issue 17).

    scripts/mutation.sh                                  # first: the run, which leaves mutants/
    python3 scripts/mutation_table.py                    # print the table
    python3 scripts/mutation_table.py --update docs/mutation.md   # replace the table in the doc

One row per selected mutant that the score does not count as killed (the targets are read from
scripts/mutation.sh, so the table and the score cover the same mutants): its name without the
package prefix, its status, the first line the mutation added (from mutmut's diff, cut to 110
characters) and a reason. Reasons are carried over from the current table of the doc, by mutant
name or, when the numbering moved, by function and mutated line; a new survivor gets "open: not
yet examined" until someone writes its reason in the doc. Run it from the repository root; it
reads mutmut's state in mutants/ through mutmut's own modules (mutmut 3.8), or through
`mutmut results`/`mutmut show` otherwise.
"""
from __future__ import annotations

import argparse
import fnmatch
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "frontier_mcp."
HEADER = "| mutant | status | mutated line | reason |"
KILLED_IN_SCORE = {"killed", "timeout", "caught by type check", "segfault"}  # as scripts/mutation.sh counts
UNEXAMINED = "open: not yet examined"
WIDTH = 110  # a mutated line is cut to this many characters


def targets() -> list[str]:
    """The TARGETS array of scripts/mutation.sh."""
    text = (ROOT / "scripts" / "mutation.sh").read_text()
    block = re.search(r"^TARGETS=\((.*?)^\)", text, re.S | re.M)
    if block is None:
        sys.exit("scripts/mutation.sh has no TARGETS=( ... ) array")
    return re.findall(r'"([^"]+)"', block.group(1))


def statuses_and_diffs() -> tuple[dict[str, str], Callable[[str], str]]:
    """Every mutant's status, and a function giving a mutant's diff."""
    try:
        from mutmut.__main__ import status_by_exit_code
        from mutmut.mutation.data import SourceFileMutationData
        from mutmut.mutation.diff_apply import get_diff_for_mutant
        from mutmut.utils.file_utils import walk_mutatable_files
    except ImportError:  # another mutmut 3: its command line
        out = subprocess.run(["mutmut", "results", "--all", "true"], capture_output=True, text=True, check=True).stdout
        status = {}
        for line in out.splitlines():
            name, _, result = line.strip().rpartition(": ")
            if name:
                status[name] = result
        return status, lambda name: subprocess.run(
            ["mutmut", "show", name], capture_output=True, text=True, check=True).stdout

    status, path_of = {}, {}
    for path in walk_mutatable_files():
        data = SourceFileMutationData(path=path)
        data.load()
        for name, code in data.exit_code_by_key.items():
            status[name] = status_by_exit_code[code]
            path_of[name] = path
    return status, lambda name: get_diff_for_mutant(name, path=path_of[name])


def mutated_line(diff: str) -> str:
    added = [line[1:].strip() for line in diff.splitlines() if line.startswith("+") and not line.startswith("+++")]
    return added[0][:WIDTH] if added else "(line removed)"


def cell(text: str) -> str:
    return text.replace("|", "\\|")


def natural(name: str) -> tuple[str, int]:
    """Sort key: by function, then by mutant number (3 before 11)."""
    m = re.fullmatch(r"(.*__mutmut_)(\d+)", name)
    return (m.group(1), int(m.group(2))) if m else (name, 0)


def function_of(name: str) -> str:
    return re.sub(r"__mutmut_\d+$", "", name)


def old_reasons(doc: Path) -> tuple[dict[str, str], dict[tuple[str, str], str]]:
    """Reasons of the doc's current table, by mutant and by (function, mutated line)."""
    by_name, by_line = {}, {}
    if not doc.exists():
        return by_name, by_line
    rows = table_block(doc.read_text().splitlines())
    for row in rows[2:] if rows else []:
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", row)[1:-1]]
        if len(cells) != 4:
            continue
        name, _, line, reason = cells
        by_name[name] = reason
        by_line[(function_of(name), line.strip("`"))] = reason
    return by_name, by_line


def table_block(lines: list[str], start: bool = False):
    """The lines of the table under HEADER (or, with start, the index of its first and last line + 1)."""
    for i, line in enumerate(lines):
        if line.strip() == HEADER:
            j = i
            while j < len(lines) and lines[j].startswith("|"):
                j += 1
            return (i, j) if start else lines[i:j]
    return None


def build(doc: Path) -> tuple[list[str], dict[str, int]]:
    os.chdir(ROOT)
    sys.path.insert(0, str(ROOT / "src"))
    if not Path("mutants").is_dir():
        sys.exit("no mutants/ directory: run scripts/mutation.sh first")
    patterns = targets()
    status, diff_of = statuses_and_diffs()
    selected = {n: s for n, s in status.items() if any(fnmatch.fnmatch(n, p) for p in patterns)}
    by_name, by_line = old_reasons(doc)
    rows = [HEADER, "|---|---|---|---|"]
    counts: dict[str, int] = {}
    for name in sorted(selected, key=natural):
        counts[selected[name]] = counts.get(selected[name], 0) + 1
        if selected[name] in KILLED_IN_SCORE:
            continue
        short = name.removeprefix(PACKAGE)
        line = cell(mutated_line(diff_of(name)))
        reason = by_name.get(short) or by_line.get((function_of(short), line)) or UNEXAMINED
        rows.append(f"| {short} | {selected[name]} | `{line}` | {reason} |")
    return rows, counts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--update", metavar="DOC", help="replace the table in DOC (docs/mutation.md), not print it")
    ap.add_argument("--reasons", metavar="DOC", default="docs/mutation.md", help="where the current reasons are")
    args = ap.parse_args()
    doc = ROOT / (args.update or args.reasons)
    rows, counts = build(doc)
    killed = sum(counts.get(s, 0) for s in KILLED_IN_SCORE)
    total = sum(counts.values())
    score = f"{killed}/{total} = {100 * killed / max(total, 1):.1f}%"
    summary = f"{total} mutants {dict(sorted(counts.items()))}; score {score}"
    if not args.update:
        print("\n".join(rows))
        print(summary, file=sys.stderr)
        return
    lines = doc.read_text().splitlines()
    span = table_block(lines, start=True)
    if span is None:
        sys.exit(f"{doc} has no table headed {HEADER!r}")
    lines[span[0]:span[1]] = rows
    doc.write_text("\n".join(lines) + "\n")
    print(f"{doc}: {len(rows) - 2} rows; {summary}", file=sys.stderr)


if __name__ == "__main__":
    main()

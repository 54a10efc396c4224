"""Paging from a cursor gives the pages paging by offset gives: `history` and `leaderboard` on a populated
archive (the lab of tests/test_query_plans.py), in process and through the tools and the CLI.

A cursor names the last row of a page by its key (keyset paging); the next page is read from there
without walking the rows before it. These tests walk every listing page by page both ways and compare
row for row, and check the cursor's edges: ties in the leaderboard's ratio split across pages, a cursor
with an offset, the last page, a malformed cursor.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from frontier_mcp.archive import Archive, ArchiveError
from frontier_mcp.archive.cursors import (
    history_cursor,
    leaderboard_cursor,
    parse_history_cursor,
    parse_leaderboard_cursor,
)
from frontier_mcp.cli import consoles, main
from frontier_mcp.server import build_server
from frontier_mcp.settings import load_settings

from .conftest import call, call_error
from .test_query_plans import populate

pytestmark = pytest.mark.anyio
PAGE = 97  # not a divisor of any listing's length: the last page is short


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("paging")
    populate(home / "state.db")
    return home


@pytest.fixture(scope="module")
def archive(lab: Path) -> Iterator[Archive]:
    opened = Archive(lab / "state.db")
    try:
        yield opened
    finally:
        opened.close()


def ids(rows: list[dict[str, Any]]) -> list[int]:
    return [row["id"] for row in rows]


def history_filters(archive: Archive) -> list[dict[str, Any]]:
    field = archive.one("SELECT field_a FROM pairings WHERE id = 1")["field_a"]  # type: ignore[index]
    return [{}, {"status": "recorded"}, {"status": "written"}, {"field": field},
            {"field": field, "status": "recorded"}, {"field": "a field no pairing has"}]


def test_history_from_cursors_equals_history_by_offset(archive: Archive) -> None:
    for filters in history_filters(archive):
        total = archive.history(limit=1, offset=0, **filters)[1]
        walked: list[int] = []
        before = None
        while True:
            rows, _ = archive.history(limit=PAGE, offset=0, before=before, **filters)
            assert rows == archive.history(limit=PAGE, offset=len(walked), **filters)[0], (filters, len(walked))
            walked += ids(rows)
            if len(rows) < PAGE:
                break
            before = rows[-1]["id"]
        assert len(walked) == total, filters
        assert walked == sorted(walked, reverse=True) and len(set(walked)) == total


def test_a_page_at_any_offset_is_the_page_a_plain_query_gives(archive: Archive) -> None:
    """Pages past the middle are read from the listing's other end (`from_the_end`): every offset from the
    first page to beyond the last gives what LIMIT/OFFSET over the plain query gives."""
    field = history_filters(archive)[3]["field"]
    plain = {"status": ("SELECT id FROM experiments WHERE status = 'recorded' ORDER BY id DESC",
                        {"status": "recorded"}),
             "field": ("SELECT e.id FROM experiments e JOIN pairings p ON p.id = e.pairing_id WHERE ? IN "
                       "(p.field_a, p.field_b) AND e.status = 'recorded' ORDER BY e.id DESC",
                       {"field": field, "status": "recorded"}),
             "ranked": ("SELECT id FROM experiments WHERE best_ratio IS NOT NULL ORDER BY best_ratio, id", {}),
             "quick": ("SELECT experiment_id AS id FROM leader WHERE suite = 'quick' ORDER BY best_ratio, "
                       "experiment_id", {"suite": "quick"})}
    for name, (sql, filters) in plain.items():
        listing = archive.history if name in ("status", "field") else archive.leaderboard
        total = listing(limit=1, offset=0, **filters)[1]
        params = (field,) if name == "field" else ()
        for offset in sorted({0, 1, total // 2 - 3, total // 2, total // 2 + 3, total - PAGE - 1, total - PAGE,
                              total - 50, total - 1, total, total + 5} - {-1}):
            expected = ids(archive.query(f"{sql} LIMIT ? OFFSET ?", (*params, PAGE, max(0, offset))))
            assert ids(listing(limit=PAGE, offset=max(0, offset), **filters)[0]) == expected, (name, offset)


def test_history_from_a_cursor_with_an_offset_skips_rows_after_the_cursor(archive: Archive) -> None:
    for filters in history_filters(archive)[:4]:
        by_offset = ids(archive.history(limit=40, offset=0, **filters)[0])
        if len(by_offset) < 40:
            continue
        after_ten = ids(archive.history(limit=20, offset=5, before=by_offset[9], **filters)[0])
        assert after_ten == by_offset[15:35], filters
    assert archive.history(limit=5, offset=0, before=1)[0] == []  # nothing is older than the first experiment


def test_leaderboard_from_cursors_equals_leaderboard_by_offset(archive: Archive) -> None:
    for suite in (None, "quick", "standard", "a suite with no runs"):
        total = archive.leaderboard(limit=1, offset=0, suite=suite)[1]
        walked: list[tuple[float, int]] = []
        after = None
        while True:
            rows, _ = archive.leaderboard(limit=PAGE, offset=0, suite=suite, after=after)
            assert rows == archive.leaderboard(limit=PAGE, offset=len(walked), suite=suite)[0], (suite, len(walked))
            walked += [(row["geomean_ratio"], row["id"]) for row in rows]
            if len(rows) < PAGE:
                break
            after = walked[-1]
        assert len(walked) == total and walked == sorted(walked), suite


def test_a_tie_in_the_ratio_split_across_pages_loses_and_repeats_no_row(tmp_path: Path) -> None:
    archive = Archive(tmp_path / "state.db")
    try:
        pairing = archive.add_pairing("a", "b", None)
        ratios = [0.5, 0.7, 0.7, 0.7, 0.7, 0.7, 0.9, 0.7, 1.2]
        for i, ratio in enumerate(ratios):
            eid, _ = archive.add_experiment(name=f"e{i}", pairing_id=pairing, parent_id=None, source=f"fn f{i}() {{}}",
                                            normalized_sha256=f"{i:064x}", statement="s", mechanism="m", prediction="p")
            archive.add_benchmark_run(eid, job_id=None, suite="quick", harness_version="h", outcome="tie",
                                      geomean_ratio=ratio, wins=0, ties=1, losses=0, summary={}, provenance={},
                                      seconds=1.0, trials=[])
        for suite in (None, "quick"):
            by_offset = [ids(archive.leaderboard(limit=2, offset=k, suite=suite)[0]) for k in range(0, 10, 2)]
            by_cursor, after = [], None
            for _ in range(5):
                rows, _ = archive.leaderboard(limit=2, offset=0, suite=suite, after=after)
                by_cursor.append(ids(rows))
                after = (rows[-1]["geomean_ratio"], rows[-1]["id"]) if rows else after
            assert by_cursor == by_offset == [[1, 2], [3, 4], [5, 6], [8, 7], [9]]
    finally:
        archive.close()


def test_cursors_read_back_what_they_wrote_and_refuse_anything_else() -> None:
    assert parse_history_cursor(history_cursor(40, 99_960)) == (40, 99_960)
    for ratio in (0.1 + 0.2, 1e-300, 123456.789, 1.0):
        assert parse_leaderboard_cursor(leaderboard_cursor(7, ratio, 12)) == (7, (ratio, 12))
    for text in ("", "40", "40:", "-1:5", "a:5", "40:5:6", "4e1:5", "٣:5", "1" * 19 + ":5"):
        with pytest.raises(ArchiveError, match="next_cursor"):
            parse_history_cursor(text)
    for text in ("", "7:0.5", "7:nan:1", "7:inf:1", "7:x:1", "7:0.5:-1", "7:0.5:1:2"):
        with pytest.raises(ArchiveError, match="next_cursor"):
            parse_leaderboard_cursor(text)


@pytest.fixture
async def client(lab: Path) -> AsyncIterator[Client]:
    async with Client(build_server(load_settings(home=lab, environ={}))) as connected:
        yield connected


@pytest.mark.parametrize(("tool", "args"), [("history", {}), ("history", {"status": "recorded"}),
                                            ("leaderboard", {}), ("leaderboard", {"suite": "standard"})])
async def test_the_tools_next_cursor_gives_the_next_offset_page(client: Client, tool: str, args: dict[str, Any]
                                                                ) -> None:
    first = await call(client, tool, {**args, "limit": 30})
    assert first["next_offset"] == 30 and first["next_cursor"]
    second = await call(client, tool, {**args, "limit": 30, "cursor": first["next_cursor"]})
    by_offset = await call(client, tool, {**args, "limit": 30, "offset": 30})
    assert second == by_offset  # rows, ranks, offset, next_offset and next_cursor alike
    assert f"cursor={second['next_cursor']}" in second["summary"]
    last = await call(client, tool, {**args, "limit": 30, "offset": first["total"] - 10})
    assert last["next_cursor"] is None and last["next_offset"] is None and len(last["rows"]) == 10
    message = await call_error(client, tool, {**args, "cursor": "not a cursor"})
    assert "next_cursor" in message


def test_the_cli_pages_by_cursor(lab: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
                                 ) -> None:
    monkeypatch.setattr(consoles.out, "width", 250)  # the whole table, one line per row
    monkeypatch.setattr(consoles.err, "width", 250)

    def cli(*argv: str) -> tuple[int, str, str]:
        code = main(["--home", str(lab), *argv])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    code, _, note = cli("leaderboard", "--limit", "5")
    assert code == 0, note
    cursor = note.split("--cursor ")[1].split()[0]
    by_cursor, by_offset = cli("leaderboard", "--limit", "5", "--cursor", cursor), cli("leaderboard", "--limit", "5",
                                                                                        "--offset", "5")
    assert by_cursor == by_offset
    ranks = [int(m) for m in re.findall(r"^│\s*(\d+)\s*│", by_cursor[1], re.M)]
    assert ranks == [6, 7, 8, 9, 10]  # ranks continue from the cursor
    code, pairs, _ = cli("pairings", "--limit", "3")
    total = int(re.findall(r"(\d+) field pair\(s\) proposed", pairs)[0])
    assert code == 0 and total > 3 and f"{total - 3} more" in pairs

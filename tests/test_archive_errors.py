"""A state.db that cannot be used, a full disk, a number SQLite cannot hold: one clear line each."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from frontier_mcp.archive import Archive, ArchiveError, ArchiveUnusable, store
from frontier_mcp.archive.errors import unusable

AS_ROOT = os.geteuid() == 0


def fresh(path: Path) -> Path:
    """A valid archive with one pairing, closed and checkpointed (no -wal or -shm left)."""
    archive = Archive(path)
    archive.add_pairing("p-adic-analysis", "fluid-dynamics", seed=1)
    archive.close()
    return path


def one_line(exc: BaseException) -> str:
    text = str(exc)
    assert "\n" not in text and "Traceback" not in text
    return text


def test_garbage_bytes_are_not_an_archive(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    path.write_bytes(os.urandom(64 * 1024))
    with pytest.raises(ArchiveUnusable) as caught:
        Archive(path)
    text = one_line(caught.value)
    assert str(path) in text and "not an SQLite database" in text and "move it aside" in text


def test_a_text_file_is_not_an_archive(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    path.write_text("these are my notes, not a database\n" * 100)
    with pytest.raises(ArchiveUnusable, match="not an SQLite database"):
        Archive(path)


def test_a_truncated_archive_is_damaged(tmp_path: Path) -> None:
    path = fresh(tmp_path / "state.db")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ArchiveUnusable) as caught:
        Archive(path)
    text = one_line(caught.value)
    assert "is damaged" in text and "move it aside" in text and str(path) in text


def test_a_corrupted_page_is_found_by_the_check_at_open(tmp_path: Path) -> None:
    path = fresh(tmp_path / "state.db")
    data = bytearray(path.read_bytes())
    page = 4096
    data[2 * page + 8: 3 * page] = os.urandom(page - 8)  # a table page's cells, header intact
    path.write_bytes(bytes(data))
    with pytest.raises(ArchiveUnusable, match="damaged"):
        Archive(path)


def test_a_large_archive_opens_without_reading_every_page_and_doctor_reads_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The whole-file check costs ~2 s per 100,000 experiments: above the limit only `doctor` pays it.
    path = fresh(tmp_path / "state.db")
    data = bytearray(path.read_bytes())
    page = 4096
    data[2 * page + 8: 3 * page] = os.urandom(page - 8)
    path.write_bytes(bytes(data))
    monkeypatch.setattr(store, "FULL_CHECK_BYTES", len(data) - 1)
    Archive(path).close()
    with pytest.raises(ArchiveUnusable, match="damaged"):
        Archive(path, check="full")
    monkeypatch.setattr(store, "FULL_CHECK_BYTES", len(data))
    with pytest.raises(ArchiveUnusable, match="damaged"):
        Archive(path)
    not_a_database = tmp_path / "other.db"
    not_a_database.write_bytes(b"x" * 8192)
    monkeypatch.setattr(store, "FULL_CHECK_BYTES", 0)
    with pytest.raises(ArchiveUnusable):
        Archive(not_a_database)


@pytest.mark.skipif(AS_ROOT, reason="root ignores file permissions")
def test_a_read_only_archive_says_to_fix_permissions(tmp_path: Path) -> None:
    path = fresh(tmp_path / "state.db")
    path.chmod(0o444)
    tmp_path.chmod(0o555)
    try:
        with pytest.raises(ArchiveUnusable) as caught:
            Archive(path)
    finally:
        tmp_path.chmod(0o755)
        path.chmod(0o644)
    assert "writable" in one_line(caught.value)


@pytest.mark.skipif(AS_ROOT, reason="root ignores file permissions")
def test_a_lab_folder_that_cannot_be_created_says_so(tmp_path: Path) -> None:
    tmp_path.chmod(0o555)
    try:
        with pytest.raises(ArchiveUnusable, match="writable"):
            Archive(tmp_path / "lab" / "state.db")
    finally:
        tmp_path.chmod(0o755)


def test_permission_errors_read_as_permission_problems() -> None:
    path = Path("/lab/state.db")
    for exc in (sqlite3.OperationalError("attempt to write a readonly database"),
                PermissionError(13, "Permission denied")):
        assert "make the file and its folder writable" in one_line(unusable(path, exc))


def test_a_full_disk_is_an_actionable_error_and_writes_nothing(tmp_path: Path) -> None:
    archive = Archive(tmp_path / "state.db")
    try:
        pairing = archive.add_pairing("a", "b", None)
        pages = archive.db.execute("PRAGMA page_count").fetchone()[0]
        archive.db.execute(f"PRAGMA max_page_count = {pages + 1}")  # SQLite's own SQLITE_FULL
        before = archive.counts()
        with pytest.raises(ArchiveError) as caught:
            archive.add_experiment(name="big", pairing_id=pairing, parent_id=None, source="x" * 200_000,
                                   normalized_sha256="n", statement="s", mechanism="m", prediction="p")
        text = one_line(caught.value)
        assert "is full" in text and "Free some space" in text and "nothing was written" in text
        assert archive.counts() == before
    finally:
        archive.close()


@pytest.mark.parametrize("value", [2**63, 2**70, -(2**63) - 1])
def test_integers_past_64_bits_are_refused_with_the_limit(tmp_path: Path, value: int) -> None:
    archive = Archive(tmp_path / "state.db")
    try:
        for attempt in (lambda: archive.experiment(value), lambda: archive.job(str(value)) and None,
                        lambda: archive.add_pairing("a", "b", value), lambda: archive.lineage(value)):
            try:
                attempt()
            except ArchiveError as exc:
                assert "2**63 - 1" in one_line(exc)
        with pytest.raises(ArchiveError, match="too large"):
            archive.require_experiment(value)
        with pytest.raises(ArchiveError, match="too large"):
            archive.add_pairing("a", "b", value)
        assert archive.counts()["pairings"] == 0
    finally:
        archive.close()


def test_the_cli_prints_one_line_not_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "state.db").write_bytes(b"\x00garbage" * 1000)
    done = subprocess.run([sys.executable, "-m", "frontier_mcp", "--home", str(tmp_path), "history"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr and "not an SQLite database" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_a_server_on_an_unusable_archive_answers_every_tool_with_the_reason(tmp_path: Path) -> None:
    import anyio
    from mcp import Client

    from frontier_mcp.server import build_server
    from frontier_mcp.settings import load_settings

    (tmp_path / "state.db").write_bytes(b"not a database at all" * 500)
    server = build_server(load_settings(home=tmp_path, environ={}, cargo=str(tmp_path / "no-cargo")))

    async def session() -> list[str]:
        async with Client(server) as client:
            assert len((await client.list_tools()).tools) == 10
            texts = []
            for name, args in (("history", {}), ("leaderboard", {}), ("propose_pairing", {}),
                               ("experiment", {"experiment_id": 1}), ("compile", {"experiment_id": 1}),
                               ("job_status", {"job_id": "bench-quick-0", "wait_seconds": 0})):
                result = await client.call_tool(name, args)
                assert result.is_error, name
                texts.append(" ".join(getattr(c, "text", "") for c in result.content))
            return texts

    for text in anyio.run(session):
        assert "not an SQLite database" in text and "move it aside" in text, text

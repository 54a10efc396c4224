"""Every read of the archive: one method per question, all through the read-only connection.

Each public read method is registered as a listing (`@listing`: an index search at any size of the
archive, with the argument shapes that exercise each of its query plans) or as a whole-table read by
design (`@whole_table`, with the reason). tests/test_query_plans.py runs every listing's cases under
`EXPLAIN QUERY PLAN` and fails on a scan of a table that grows with the experiments, and fails on a
read method registered as neither; benches/server.py times every case at 100,000 or 1,000,000
experiments. Targets (issue 16): every listing <= 10 ms at 100,000 experiments, <= 50 ms at 1,000,000.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from .errors import ArchiveError
from .records import ExperimentSummary, PairingRow, Relatives, is_hidden
from .schema import HIDDEN_SQL

TABLES = ("pairings", "experiments", "builds", "benchmark_runs", "trials", "verdicts", "jobs", "ablations",
          "claim_tests")


@dataclass(frozen=True)
class Probe:
    """Values a populated archive holds, from which each listing's cases build their arguments."""

    experiments: int  # the largest experiment id
    middle: int  # an experiment halfway through the archive
    leaf: int  # the newest experiment with a parent: a lineage to walk
    parent: int  # its parent: an experiment with children
    field: str  # the fields of the middle experiment's pairing
    other_field: str
    normalized_sha256: str  # the middle experiment's normalized source hash
    job: str  # the newest job with benchmark runs (or an id no job has)
    since: float  # a day before the newest experiment was created (the holdout gate's window)
    recorded: int  # the listings' lengths: history status=recorded, the leaderboard, its quick suite
    ranked: int
    quick: int
    field_experiments: int  # experiments filed under `field`
    # Cursors as deep as the offset cases (the last row before the page there; N = experiments).
    recorded_quarter: int  # the id N/4 deep into history status=recorded
    ranked_half: tuple[float, int]  # (ratio, id) N/2 down the leaderboard
    quick_third: tuple[float, int]  # (ratio, id) N/3 down the quick suite's leaderboard

    # A field no pairing has: what propose_pairing asks for a pair never tried, where a walk of the
    # verdicts newest first would find nothing to stop at.
    unused_field: str = "a field no pairing has"

    @classmethod
    def of(cls, queries: Queries) -> Probe:
        top = queries.one("SELECT MAX(id) AS id FROM experiments")
        if top is None or top["id"] is None:
            raise ArchiveError("the archive has no experiments to probe")
        last = int(top["id"])
        middle = queries.one("SELECT e.id, e.created_at, p.field_a, p.field_b, s.normalized_sha256 FROM experiments e "
                             "JOIN pairings p ON p.id = e.pairing_id JOIN sources s ON s.id = e.source_id "
                             "WHERE e.id >= ? ORDER BY e.id LIMIT 1", ((last + 1) // 2,))
        assert middle is not None
        leaf = queries.one("SELECT id, parent_id FROM experiments WHERE parent_id IS NOT NULL ORDER BY id DESC LIMIT 1")
        job = queries.one("SELECT job_id FROM benchmark_runs WHERE job_id IS NOT NULL ORDER BY id DESC LIMIT 1")
        newest = queries.one("SELECT created_at FROM experiments WHERE id = ?", (last,))
        field = middle["field_a"]

        def nth(sql: str, params: tuple[Any, ...], depth: int) -> dict[str, Any] | None:
            return queries.one(f"{sql} LIMIT 1 OFFSET ?", (*params, max(0, depth - 1)))

        recorded = nth("SELECT id FROM experiments INDEXED BY idx_experiments_status WHERE status = 'recorded' "
                       "ORDER BY id DESC", (), last // 4)
        half = nth("SELECT best_ratio AS ratio, id FROM experiments WHERE best_ratio IS NOT NULL "
                   "ORDER BY best_ratio, id", (), last // 2)
        third = nth("SELECT best_ratio AS ratio, experiment_id AS id FROM leader WHERE suite = 'quick' "
                    "ORDER BY best_ratio, experiment_id", (), last // 3)
        return cls(experiments=last, middle=middle["id"], leaf=leaf["id"] if leaf else last,
                   parent=leaf["parent_id"] if leaf else last, field=field, other_field=middle["field_b"],
                   normalized_sha256=middle["normalized_sha256"], job=job["job_id"] if job else "no-such-job",
                   since=(newest["created_at"] if newest else middle["created_at"]) - 86_400.0,
                   recorded=queries.listing_count("status=recorded"), ranked=queries.listing_count("ranked"),
                   quick=queries.listing_count("suite=quick"), recorded_quarter=recorded["id"] if recorded else last,
                   field_experiments=queries.listing_count(f"field={field}"),
                   ranked_half=(half["ratio"], half["id"]) if half else (0.0, 0),
                   quick_third=(third["ratio"], third["id"]) if third else (0.0, 0))


# A case: its label, and the keyword arguments it calls the method with.
Case = tuple[str, Callable[[Probe], dict[str, Any]]]
LISTINGS: dict[str, tuple[Case, ...]] = {}
WHOLE_TABLE: dict[str, str] = {}
Method = TypeVar("Method", bound=Callable[..., Any])


def listing(*cases: Case) -> Callable[[Method], Method]:
    """Registers a read method as a listing, with the cases that exercise its query plans."""
    def register(method: Method) -> Method:
        LISTINGS[method.__name__] = cases or (("", lambda _: {}),)
        return method
    return register


def whole_table(reason: str) -> Callable[[Method], Method]:
    """Registers a read method that reads every row of a table by design."""
    def register(method: Method) -> Method:
        WHOLE_TABLE[method.__name__] = reason
        return method
    return register


def from_the_end(limit: int, offset: int, total: int) -> tuple[int, int] | None:
    """The page at `offset` of a listing of `total` rows, read in the opposite order when that walks fewer
    index entries than `offset` does: (limit, offset) in that order, or None (walk forward). A page near
    the end of a million rows costs what one near the start does; the middle stays the dearest. `total`
    is exact (listing_counts, kept by triggers); the caller sorts the page back into the listing's order."""
    rest = total - offset  # rows from the page's first to the end
    if rest - limit >= offset:
        return None
    return (min(limit, rest), max(0, rest - limit)) if rest > 0 else (0, 0)


def _middle(probe: Probe) -> dict[str, Any]:
    return {"experiment_id": probe.middle}


class Queries:
    """Read methods; the class that mixes them in supplies `query` (read-only, time-limited)."""

    def query(self, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()) -> list[dict[str, Any]]:
        raise NotImplementedError

    def tuples(self, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def one(self, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()) -> dict[str, Any] | None:
        rows = self.query(sql, params)
        return rows[0] if rows else None

    # -- pairings ---------------------------------------------------------------------------

    @listing()  # pair_stats: one row per pair of fields, bounded by the catalogue, not by the experiments
    def pair_usage(self) -> dict[str, dict[str, int]]:
        """Per unordered pair: how often proposed, used by an experiment, and lost. Every pair ever proposed
        (up to the catalogue's 4,560: propose_pairing weighs them all), built from plain tuples: a row
        object and a dict copy of each row cost about as much again as the read."""
        return {key: {"pair_key": key, "proposed": proposed, "experiments": experiments, "failures": failures}
                for key, proposed, experiments, failures in self.tuples(
                    "SELECT pair_key, proposed, experiments, failures FROM pair_stats")}

    @listing(("first 100 (the CLI's default)", lambda p: {"limit": 100}))
    def pairing_rows(self, limit: int | None = None) -> list[PairingRow]:
        """Per unordered pair of fields: proposals, experiments, best visible ratio, wins and failures; the
        first `limit` in the listing's order (best ratio first) come from idx_pair_stats_rank, unsorted.
        Without a limit, every pair proposed so far (up to the catalogue's 4,560)."""
        return cast(list[PairingRow], self.query(
            """SELECT pair_key, proposed, experiments, best_ratio, wins, failures, last_proposed FROM pair_stats
               INDEXED BY idx_pair_stats_rank ORDER BY best_ratio IS NULL, best_ratio, proposed DESC, pair_key
               LIMIT ?""", (-1 if limit is None else limit,)))

    @listing()
    def pair_count(self) -> int:
        """Pairs of fields proposed so far (rows of pair_stats: at most the catalogue's pairs)."""
        row = self.one("SELECT COUNT(*) AS n FROM pair_stats")
        return int(row["n"]) if row else 0

    @listing(("a used field and another", lambda p: {"fields": [p.field, p.other_field]}),
             ("a field no pairing has", lambda p: {"fields": [p.unused_field]}))
    def lessons_for_fields(self, fields: list[str], limit: int = 5) -> list[dict[str, Any]]:
        """The newest lessons of experiments whose pairing has any of `fields`: the newest `limit` of each
        field from field_lessons, merged (a lesson filed under both fields counts once)."""
        if not fields:
            return []
        newest = " UNION ".join(
            "SELECT * FROM (SELECT verdict_id, created_at FROM field_lessons WHERE field = ? "
            "ORDER BY created_at DESC, verdict_id DESC LIMIT ?)" for _ in fields)
        return self.query(
            f"""WITH hits(verdict_id, created_at) AS ({newest})
                SELECT e.id AS experiment_id, e.name AS name, v.verdict AS verdict, v.lessons AS lessons
                FROM hits JOIN verdicts v ON v.id = hits.verdict_id JOIN experiments e ON e.id = v.experiment_id
                ORDER BY hits.created_at DESC, hits.verdict_id DESC LIMIT ?""",
            (*(value for field in fields for value in (field, limit)), limit))

    # -- experiments ------------------------------------------------------------------------

    @whole_table("every id: rendering every page")
    def experiment_ids(self) -> list[int]:
        # The narrow index, not the table: a walk of the table reads every row (~1 KB each).
        return [row["id"] for row in self.query("SELECT id FROM experiments INDEXED BY idx_experiments_id ORDER BY id")]

    @listing(("no prefix", lambda p: {"prefix": "", "limit": 101}),
             ("the middle id's first digit", lambda p: {"prefix": str(p.middle)[0], "limit": 101}),
             ("the middle id's first three digits", lambda p: {"prefix": str(p.middle)[:3], "limit": 101}),
             ("the largest id", lambda p: {"prefix": str(p.experiments), "limit": 101}))
    def experiment_ids_starting_with(self, prefix: str, limit: int) -> list[int]:
        """Experiment ids whose decimal digits start with `prefix`, largest first (completions). The ids
        with a prefix are ranges (5, 50-59, 500-599, ...), each read from the key, largest range first;
        `CAST(id AS TEXT) LIKE '5%'` walked every id above the first match instead."""
        if prefix and (not prefix.isdigit() or prefix.startswith("0")):
            return []
        if not prefix:
            return [row["id"] for row in self.query(
                "SELECT id FROM experiments INDEXED BY idx_experiments_id ORDER BY id DESC LIMIT ?", (limit,))]
        top = self.one("SELECT MAX(id) AS id FROM experiments")
        largest = int(top["id"]) if top and top["id"] is not None else 0
        ranges, low, width = [], int(prefix), 1
        while low <= largest:
            ranges.append((low, low + width - 1))
            low, width = low * 10, width * 10
        found: list[int] = []
        for low, high in reversed(ranges):
            if len(found) >= limit:
                break
            found += [row["id"] for row in self.query(
                "SELECT id FROM experiments WHERE id BETWEEN ? AND ? ORDER BY id DESC LIMIT ?",
                (low, high, limit - len(found)))]
        return found

    @listing(("", lambda p: {"normalized_sha256": p.normalized_sha256}))
    def experiments_with_source(self, normalized_sha256: str) -> list[dict[str, Any]]:
        return self.query(
            """SELECT e.id, e.name FROM experiments e JOIN sources s ON s.id = e.source_id
               WHERE s.normalized_sha256 = ? ORDER BY e.id""", (normalized_sha256,))

    @listing(("", _middle))
    def experiment(self, experiment_id: int) -> dict[str, Any] | None:
        return self.one(
            """SELECT e.*, s.sha256 AS source_sha256, s.text AS source, s.bytes AS source_bytes,
                      p.field_a, p.field_b
               FROM experiments e JOIN sources s ON s.id = e.source_id
               JOIN pairings p ON p.id = e.pairing_id WHERE e.id = ?""", (experiment_id,))

    @listing(("", _middle))
    def require_experiment(self, experiment_id: int) -> dict[str, Any]:
        found = self.experiment(experiment_id)
        if found is None:
            raise ArchiveError(f"experiment {experiment_id} does not exist; see `history` for ids.")
        return found

    @listing(("", _middle))
    def experiment_summary(self, experiment_id: int) -> ExperimentSummary:
        """One experiment with its latest visible run's outcome and ratio, its holdout and verdict."""
        row = self.one(
            """SELECT e.id, e.name, e.status, e.parent_id, e.created_at, p.field_a, p.field_b,
                      (SELECT verdict FROM verdicts v WHERE v.experiment_id = e.id) AS verdict
               FROM experiments e JOIN pairings p ON p.id = e.pairing_id WHERE e.id = ?""", (experiment_id,))
        if row is None:
            raise ArchiveError(f"experiment {experiment_id} does not exist; see `frontier-mcp history` for ids.")
        runs = self.query("SELECT id, suite, outcome, geomean_ratio FROM benchmark_runs WHERE experiment_id = ? "
                          "ORDER BY id", (experiment_id,))
        visible = [r for r in runs if not is_hidden(r["suite"])]
        hidden = [r for r in runs if is_hidden(r["suite"])]
        last = visible[-1] if visible else None
        row["suite"] = last["suite"] if last else None
        row["outcome"] = last["outcome"] if last else None
        row["geomean_ratio"] = last["geomean_ratio"] if last else None
        row["holdout"] = hidden[-1]["outcome"] if hidden else None
        return cast(ExperimentSummary, row)

    @listing(("", lambda p: {"experiment_id": p.parent}))
    def children(self, experiment_id: int) -> list[dict[str, Any]]:
        return self.query("SELECT id, name, status FROM experiments WHERE parent_id = ? ORDER BY id",
                          (experiment_id,))

    @listing(("", lambda p: {"experiment_id": p.leaf}))
    def lineage(self, experiment_id: int, max_depth: int = 50) -> list[dict[str, Any]]:
        """Ancestors, oldest first, ending with the experiment itself."""
        return list(reversed(self.query(
            """WITH RECURSIVE chain(id, parent_id, name, depth) AS (
                   SELECT id, parent_id, name, 0 FROM experiments WHERE id = ?
                   UNION ALL
                   SELECT e.id, e.parent_id, e.name, chain.depth + 1
                   FROM experiments e JOIN chain ON e.id = chain.parent_id WHERE chain.depth < ?)
               SELECT id, parent_id, name FROM chain ORDER BY depth""", (experiment_id, max_depth))))

    @listing(("", lambda p: {"experiment_id": p.parent}))
    def descendants(self, experiment_id: int, max_depth: int = 50) -> list[dict[str, Any]]:
        """Every experiment below this one, with its parent id and depth (1 = child), in id order."""
        return self.query(
            """WITH RECURSIVE tree(id, parent_id, depth) AS (
                   SELECT id, parent_id, 1 FROM experiments WHERE parent_id = ?
                   UNION ALL
                   SELECT e.id, e.parent_id, tree.depth + 1 FROM experiments e JOIN tree ON e.parent_id = tree.id
                   WHERE tree.depth < ?)
               SELECT id, parent_id, depth FROM tree ORDER BY id""", (experiment_id, max_depth))

    @listing(("", lambda p: {"experiment_id": p.leaf}))
    def linked_ids(self, experiment_id: int) -> list[int]:
        """The experiment, its ancestors and its descendants: the report pages that link to each other."""
        ids = [row["id"] for row in self.lineage(experiment_id)]
        ids += [row["id"] for row in self.descendants(experiment_id)]
        return sorted(set(ids))

    @listing(("", lambda p: {"experiment_id": p.leaf}))
    def relatives(self, experiment_id: int) -> Relatives:
        """Ancestors, descendants and siblings: their best and worst by ratio, and their lessons."""
        rows = self.query(
            """WITH RECURSIVE up(id) AS (SELECT parent_id FROM experiments WHERE id = :id
                                         UNION SELECT e.parent_id FROM experiments e JOIN up ON e.id = up.id),
                    down(id) AS (SELECT id FROM experiments WHERE parent_id = :id
                                 UNION SELECT e.id FROM experiments e JOIN down ON e.parent_id = down.id),
                    kin(id) AS (SELECT id FROM up UNION SELECT id FROM down
                                UNION SELECT id FROM experiments WHERE parent_id =
                                      (SELECT parent_id FROM experiments WHERE id = :id))
               SELECT e.id, e.name, e.best_ratio, v.verdict, v.lessons FROM experiments e
               LEFT JOIN verdicts v ON v.experiment_id = e.id
               WHERE e.id IN (SELECT id FROM kin WHERE id IS NOT NULL) AND e.id != :id ORDER BY e.id LIMIT 200""",
            {"id": experiment_id})
        ranked = sorted((r for r in rows if r["best_ratio"] is not None), key=lambda r: r["best_ratio"])
        return {"count": len(rows), "best": ranked[0] if ranked else None, "worst": ranked[-1] if ranked else None,
                "lessons": [{"id": r["id"], "name": r["name"], "verdict": r["verdict"], "lesson": r["lessons"][:300]}
                            for r in rows if r["lessons"]][:20]}

    # -- builds, jobs, runs, verdicts -------------------------------------------------------

    @listing(("", _middle))
    def builds(self, experiment_id: int) -> list[dict[str, Any]]:
        return self.query("SELECT * FROM builds WHERE experiment_id = ? ORDER BY id", (experiment_id,))

    @listing(("", _middle))
    def last_build(self, experiment_id: int) -> dict[str, Any] | None:
        return self.one("SELECT * FROM builds WHERE experiment_id = ? ORDER BY id DESC LIMIT 1",
                        (experiment_id,))

    @listing()
    def running_jobs(self) -> list[dict[str, Any]]:
        """Jobs the archive says are running (a server that stopped may have left some)."""
        return self.query("SELECT id, server_pid FROM jobs INDEXED BY idx_jobs_running WHERE status = 'running'")

    @listing(("", lambda p: {"job_id": p.job}))
    def job(self, job_id: str) -> dict[str, Any] | None:
        return self.one("SELECT * FROM jobs WHERE id = ?", (job_id,))

    @listing(("", _middle))
    def benchmark_runs(self, experiment_id: int) -> list[dict[str, Any]]:
        return self.query("SELECT * FROM benchmark_runs WHERE experiment_id = ? ORDER BY id",
                          (experiment_id,))

    @listing(("", lambda p: {"job_id": p.job}))
    def runs_of_job(self, job_id: str) -> list[dict[str, Any]]:
        return self.query("SELECT * FROM benchmark_runs WHERE job_id = ? ORDER BY id", (job_id,))

    @listing(("", lambda p: {"since": p.since}))
    def holdout_runs_since(self, since: float) -> list[dict[str, Any]]:
        """Hidden-suite runs recorded at or after `since` (a UNIX time), oldest first: read from the
        partial index that holds exactly these columns of the hidden suites' runs (schema 9)."""
        return self.query(f"SELECT id, experiment_id, suite, job_id, outcome, created_at FROM benchmark_runs "
                          f"INDEXED BY idx_runs_hidden WHERE suite IN ({HIDDEN_SQL}) AND created_at >= ? "
                          "ORDER BY id", (since,))

    @listing(("", _middle))
    def ablations(self, experiment_id: int) -> list[dict[str, Any]]:
        return self.query("SELECT * FROM ablations WHERE experiment_id = ? ORDER BY id", (experiment_id,))

    @listing(("", lambda p: {"job_id": p.job}))
    def ablations_of_job(self, job_id: str) -> list[dict[str, Any]]:
        return self.query("SELECT * FROM ablations WHERE job_id = ? ORDER BY id", (job_id,))

    @listing(("", _middle))
    def verdict(self, experiment_id: int) -> dict[str, Any] | None:
        return self.one("SELECT * FROM verdicts WHERE experiment_id = ?", (experiment_id,))

    # -- listings ---------------------------------------------------------------------------

    @listing(("first page", lambda p: {"limit": 20, "offset": 0}),
             ("halfway", lambda p: {"limit": 20, "offset": p.experiments // 2}),
             ("from a cursor halfway", lambda p: {"limit": 20, "offset": 0, "before": p.middle}),
             ("status=recorded", lambda p: {"limit": 20, "offset": 0, "status": "recorded"}),
             ("status=recorded, a quarter deep", lambda p: {"limit": 20, "offset": p.experiments // 4,
                                                             "status": "recorded"}),
             ("status=recorded, the last page", lambda p: {"limit": 20, "offset": max(0, p.recorded - 20),
                                                            "status": "recorded"}),
             ("status=recorded, from a cursor a quarter deep",
              lambda p: {"limit": 20, "offset": 0, "status": "recorded", "before": p.recorded_quarter}),
             ("status=written", lambda p: {"limit": 20, "offset": 0, "status": "written"}),
             ("field", lambda p: {"limit": 20, "offset": 0, "field": p.field}),
             ("field, halfway", lambda p: {"limit": 20, "offset": p.field_experiments // 2, "field": p.field}),
             ("field, from a cursor halfway", lambda p: {"limit": 20, "offset": 0, "field": p.field,
                                                          "before": p.middle}),
             ("field and status=recorded", lambda p: {"limit": 20, "offset": 0, "field": p.field,
                                                      "status": "recorded"}),
             ("field and status=recorded, from a cursor halfway",
              lambda p: {"limit": 20, "offset": 0, "field": p.field, "status": "recorded", "before": p.middle}),
             ("a field no pairing has", lambda p: {"limit": 20, "offset": 0, "field": p.unused_field}))
    def history(self, *, limit: int, offset: int, status: str | None = None, field: str | None = None,
                before: int | None = None) -> tuple[list[dict[str, Any]], int]:
        """Experiments, newest first, `offset` rows after the start or, with `before` (the id of the last
        row of the previous page: a cursor), after that row. The page's ids come from a narrow index
        (field_experiments by field and status, status, or id), then only those rows are read. From a
        cursor, a page is one range of that index at any depth; `offset` walks its entries (~40-200 ns
        each) from the nearer end of the listing (`from_the_end`), except unfiltered, where ids 1..N give
        the page's first id."""
        params: list[Any] = []
        if field:
            # Named, so the planner cannot sort the field's every experiment instead of reading the index.
            source, key_column = ("field_experiments INDEXED BY idx_field_experiments_status" if status
                                  else "field_experiments"), "experiment_id"
            where = ["field = ?"] + (["status = ?"] if status else [])
            params += [field] + ([status] if status else [])
        else:
            # Named, so the planner cannot trade them for a walk of the table (rows of ~1 KB) in id order.
            source = f"experiments INDEXED BY {'idx_experiments_status' if status else 'idx_experiments_id'}"
            key_column, where = "id", ["status = ?"] if status else []
            params += [status] if status else []
        if before is not None:
            where.append(f"{key_column} < ?")
            params.append(before)
        key = "&".join(part for part in (field and f"field={field}", status and f"status={status}") if part)
        total = self.listing_count(key or "experiments")
        clause = ("WHERE " + " AND ".join(where)) if where else ""
        direction, window = "DESC", (limit, offset)
        if before is None and (backward := from_the_end(limit, offset, total)):
            direction, window = "ASC", backward
        page = f"SELECT {key_column} AS id FROM {source} {clause} ORDER BY {key_column} {direction} LIMIT ? OFFSET ?"
        page_params: tuple[Any, ...] = (*params, *window)
        if not status and not field and offset and self.one("SELECT MAX(id) AS id FROM experiments") == {
                "id": total}:
            # Ids 1..total, none missing (frontier-mcp never deletes one): the page at `offset` starts at
            # id total - offset (below `before`), found in the key; OFFSET would walk `offset` index entries.
            first = (total if before is None else min(before - 1, total)) - offset
            page, page_params = "SELECT id FROM experiments WHERE id <= ? ORDER BY id DESC LIMIT ?", (first, limit)
        latest = f"""(SELECT {{}} FROM benchmark_runs b WHERE b.experiment_id = e.id
                      AND b.suite NOT IN ({HIDDEN_SQL}) ORDER BY b.id DESC LIMIT 1)"""
        rows = self.query(
            f"""WITH page(id) AS ({page})
                SELECT e.id, e.name, e.status, e.parent_id, e.created_at, p.field_a, p.field_b,
                       substr(e.statement, 1, 160) AS statement,
                       (SELECT verdict FROM verdicts v WHERE v.experiment_id = e.id) AS verdict,
                       {latest.format("geomean_ratio")} AS geomean_ratio,
                       {latest.format("outcome")} AS outcome,
                       {latest.format("json_extract(summary, '$.rediscovery_of')")} AS rediscovery_of,
                       (SELECT MIN(e2.id) FROM sources s2 JOIN experiments e2 ON e2.source_id = s2.id
                        WHERE s2.normalized_sha256 = (SELECT normalized_sha256 FROM sources WHERE id = e.source_id)
                          AND e2.id < e.id) AS duplicate_of
                FROM page JOIN experiments e ON e.id = page.id JOIN pairings p ON p.id = e.pairing_id
                ORDER BY e.id DESC""", page_params)
        return rows, total

    @listing(("first page", lambda p: {"limit": 20, "offset": 0}),
             ("halfway", lambda p: {"limit": 20, "offset": p.experiments // 2}),
             ("from a cursor halfway", lambda p: {"limit": 20, "offset": 0, "after": p.ranked_half}),
             ("the last page", lambda p: {"limit": 20, "offset": max(0, p.ranked - 20)}),
             ("suite=quick", lambda p: {"limit": 20, "offset": 0, "suite": "quick"}),
             ("suite=quick, a third deep", lambda p: {"limit": 20, "offset": p.experiments // 3, "suite": "quick"}),
             ("suite=quick, the last page", lambda p: {"limit": 20, "offset": max(0, p.quick - 20),
                                                       "suite": "quick"}),
             ("suite=quick, from a cursor a third deep", lambda p: {"limit": 20, "offset": 0, "suite": "quick",
                                                                     "after": p.quick_third}),
             ("suite=standard", lambda p: {"limit": 20, "offset": 0, "suite": "standard"}))
    def leaderboard(self, *, limit: int, offset: int, suite: str | None = None,
                    after: tuple[float, int] | None = None) -> tuple[list[dict[str, Any]], int]:
        """Experiments by their best geometric-mean loss ratio (visible suites), lowest first, ties by id;
        `offset` rows after the start or, with `after` (the ratio and id of the last row of the previous
        page: a cursor), after that row. The page comes from a covering index on (suite,) ratio and id:
        from a cursor, one range of it at any depth; `offset` walks its entries from the nearer end of the
        listing (`from_the_end`). Only the page is joined."""
        params: list[Any]
        if suite:
            source, key_column, where, params = "leader", "experiment_id", ["suite = ?"], [suite]
            total = self.listing_count(f"suite={suite}")
        else:
            source, key_column, where, params = "experiments", "id", ["best_ratio IS NOT NULL"], []
            total = self.listing_count("ranked")
        if after is not None:
            # (ratio, id) > after, written so the ratio bounds the index range and the id only breaks ties.
            ratio, last = after
            where.append(f"best_ratio >= ? AND (best_ratio > ? OR {key_column} > ?)")
            params += [ratio, ratio, last]
        order, window = f"best_ratio, {key_column}", (limit, offset)
        if after is None and (backward := from_the_end(limit, offset, total)):
            order, window = f"best_ratio DESC, {key_column} DESC", backward
        page = f"SELECT {key_column} AS id, best_ratio AS ratio FROM {source} WHERE {' AND '.join(where)} " \
            f"ORDER BY {order}"
        rows = self.query(
            f"""WITH page(id, ratio) AS ({page} LIMIT ? OFFSET ?)
                SELECT e.id, e.name, p.field_a, p.field_b, page.ratio AS geomean_ratio,
                       (SELECT outcome FROM benchmark_runs b WHERE b.experiment_id = e.id
                        AND b.suite NOT IN ({HIDDEN_SQL}) AND b.geomean_ratio = page.ratio LIMIT 1) AS outcome,
                       (SELECT suite FROM benchmark_runs b WHERE b.experiment_id = e.id
                        AND b.suite NOT IN ({HIDDEN_SQL}) AND b.geomean_ratio = page.ratio LIMIT 1) AS suite,
                       (SELECT verdict FROM verdicts v WHERE v.experiment_id = e.id) AS verdict
                FROM page JOIN experiments e ON e.id = page.id JOIN pairings p ON p.id = e.pairing_id
                ORDER BY page.ratio ASC, e.id ASC""", (*params, *window))
        return rows, total

    @listing(("experiments", lambda p: {"key": "experiments"}), ("a field", lambda p: {"key": f"field={p.field}"}))
    def listing_count(self, key: str) -> int:
        """A listing's total, kept by triggers (schema.add_listing_counts): "experiments", "status=S",
        "field=F", "field=F&status=S", "ranked" (experiments with a visible ratio), "suite=S"."""
        row = self.one("SELECT n FROM listing_counts WHERE key = ?", (key,))
        return int(row["n"]) if row else 0

    @whole_table("COUNT(*) of each table: `frontier-mcp doctor`")
    def counts(self) -> dict[str, int]:
        return {table: self.query(f"SELECT COUNT(*) AS n FROM {table}")[0]["n"] for table in TABLES}

    @whole_table("the lab-wide online test needs every earlier claim test, in order (claims of wins only)")
    def next_claim_position(self) -> tuple[int, list[int]]:
        """The position the next lab-wide claim test would take, and the positions of discoveries so far."""
        rows = self.query("SELECT discovery FROM claim_tests ORDER BY id")
        return len(rows) + 1, [i + 1 for i, row in enumerate(rows) if row["discovery"]]

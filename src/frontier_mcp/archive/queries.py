"""Every read of the archive: one method per question, all through the read-only connection."""

from __future__ import annotations

from typing import Any, cast

from .errors import ArchiveError
from .records import ExperimentSummary, PairingRow, Relatives, is_hidden
from .schema import HIDDEN_SQL

TABLES = ("pairings", "experiments", "builds", "benchmark_runs", "trials", "verdicts", "jobs", "ablations",
          "claim_tests")


class Queries:
    """Read methods; the class that mixes them in supplies `query` (read-only, time-limited)."""

    def query(self, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()) -> list[dict[str, Any]]:
        raise NotImplementedError

    def one(self, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()) -> dict[str, Any] | None:
        rows = self.query(sql, params)
        return rows[0] if rows else None

    # -- pairings ---------------------------------------------------------------------------

    def pair_usage(self) -> dict[str, dict[str, int]]:
        """Per unordered pair: how often proposed, used by an experiment, and lost."""
        rows = self.query("SELECT pair_key, proposed, experiments, failures FROM pair_stats")
        return {row["pair_key"]: row for row in rows}

    def pairing_rows(self) -> list[PairingRow]:
        """Per unordered pair of fields: proposals, experiments, best visible ratio, wins and failures."""
        return cast(list[PairingRow], self.query(
            """SELECT pair_key, proposed, experiments, best_ratio, wins, failures, last_proposed FROM pair_stats
               ORDER BY best_ratio IS NULL, best_ratio, proposed DESC, pair_key"""))

    def lessons_for_fields(self, fields: list[str], limit: int = 5) -> list[dict[str, Any]]:
        marks = ", ".join("?" for _ in fields)
        return self.query(
            f"""
            SELECT e.id AS experiment_id, e.name AS name, v.verdict AS verdict, v.lessons AS lessons
            FROM verdicts v JOIN experiments e ON e.id = v.experiment_id
            JOIN pairings p ON p.id = e.pairing_id
            WHERE (p.field_a IN ({marks}) OR p.field_b IN ({marks})) AND v.lessons != ''
            ORDER BY v.created_at DESC LIMIT ?
            """,
            (*fields, *fields, limit),
        )

    # -- experiments ------------------------------------------------------------------------

    def experiment_ids(self) -> list[int]:
        return [row["id"] for row in self.query("SELECT id FROM experiments ORDER BY id")]

    def experiments_with_source(self, normalized_sha256: str) -> list[dict[str, Any]]:
        return self.query(
            """SELECT e.id, e.name FROM experiments e JOIN sources s ON s.id = e.source_id
               WHERE s.normalized_sha256 = ? ORDER BY e.id""", (normalized_sha256,))

    def experiment(self, experiment_id: int) -> dict[str, Any] | None:
        return self.one(
            """SELECT e.*, s.sha256 AS source_sha256, s.text AS source, s.bytes AS source_bytes,
                      p.field_a, p.field_b
               FROM experiments e JOIN sources s ON s.id = e.source_id
               JOIN pairings p ON p.id = e.pairing_id WHERE e.id = ?""", (experiment_id,))

    def require_experiment(self, experiment_id: int) -> dict[str, Any]:
        found = self.experiment(experiment_id)
        if found is None:
            raise ArchiveError(f"experiment {experiment_id} does not exist; see `history` for ids.")
        return found

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

    def children(self, experiment_id: int) -> list[dict[str, Any]]:
        return self.query("SELECT id, name, status FROM experiments WHERE parent_id = ? ORDER BY id",
                          (experiment_id,))

    def lineage(self, experiment_id: int, max_depth: int = 50) -> list[dict[str, Any]]:
        """Ancestors, oldest first, ending with the experiment itself."""
        return list(reversed(self.query(
            """WITH RECURSIVE chain(id, parent_id, name, depth) AS (
                   SELECT id, parent_id, name, 0 FROM experiments WHERE id = ?
                   UNION ALL
                   SELECT e.id, e.parent_id, e.name, chain.depth + 1
                   FROM experiments e JOIN chain ON e.id = chain.parent_id WHERE chain.depth < ?)
               SELECT id, parent_id, name FROM chain ORDER BY depth""", (experiment_id, max_depth))))

    def descendants(self, experiment_id: int, max_depth: int = 50) -> list[dict[str, Any]]:
        """Every experiment below this one, with its parent id and depth (1 = child), in id order."""
        return self.query(
            """WITH RECURSIVE tree(id, parent_id, depth) AS (
                   SELECT id, parent_id, 1 FROM experiments WHERE parent_id = ?
                   UNION ALL
                   SELECT e.id, e.parent_id, tree.depth + 1 FROM experiments e JOIN tree ON e.parent_id = tree.id
                   WHERE tree.depth < ?)
               SELECT id, parent_id, depth FROM tree ORDER BY id""", (experiment_id, max_depth))

    def linked_ids(self, experiment_id: int) -> list[int]:
        """The experiment, its ancestors and its descendants: the report pages that link to each other."""
        ids = [row["id"] for row in self.lineage(experiment_id)]
        ids += [row["id"] for row in self.descendants(experiment_id)]
        return sorted(set(ids))

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

    def builds(self, experiment_id: int) -> list[dict[str, Any]]:
        return self.query("SELECT * FROM builds WHERE experiment_id = ? ORDER BY id", (experiment_id,))

    def last_build(self, experiment_id: int) -> dict[str, Any] | None:
        return self.one("SELECT * FROM builds WHERE experiment_id = ? ORDER BY id DESC LIMIT 1",
                        (experiment_id,))

    def job(self, job_id: str) -> dict[str, Any] | None:
        return self.one("SELECT * FROM jobs WHERE id = ?", (job_id,))

    def benchmark_runs(self, experiment_id: int) -> list[dict[str, Any]]:
        return self.query("SELECT * FROM benchmark_runs WHERE experiment_id = ? ORDER BY id",
                          (experiment_id,))

    def runs_of_job(self, job_id: str) -> list[dict[str, Any]]:
        return self.query("SELECT * FROM benchmark_runs WHERE job_id = ? ORDER BY id", (job_id,))

    def holdout_runs_since(self, since: float) -> list[dict[str, Any]]:
        """Hidden-suite runs recorded at or after `since` (a UNIX time), oldest first."""
        return self.query(f"SELECT id, experiment_id, suite, job_id, outcome, created_at FROM benchmark_runs "
                          f"INDEXED BY idx_runs_suite_created WHERE suite IN ({HIDDEN_SQL}) AND created_at >= ? "
                          "ORDER BY id", (since,))

    def ablations(self, experiment_id: int) -> list[dict[str, Any]]:
        return self.query("SELECT * FROM ablations WHERE experiment_id = ? ORDER BY id", (experiment_id,))

    def ablations_of_job(self, job_id: str) -> list[dict[str, Any]]:
        return self.query("SELECT * FROM ablations WHERE job_id = ? ORDER BY id", (job_id,))

    def verdict(self, experiment_id: int) -> dict[str, Any] | None:
        return self.one("SELECT * FROM verdicts WHERE experiment_id = ?", (experiment_id,))

    # -- listings ---------------------------------------------------------------------------

    def history(self, *, limit: int, offset: int, status: str | None = None,
                field: str | None = None) -> tuple[list[dict[str, Any]], int]:
        """Experiments, newest first. The page's ids come from a narrow index (status, pairing or id),
        then only those rows are read: a page at offset 50,000 walks index entries, not wide rows."""
        where, params = [], []
        if status:
            where.append("status = ?")
            params.append(status)
        if field:
            where.append("pairing_id IN (SELECT id FROM pairings WHERE field_a = ? UNION "
                         "SELECT id FROM pairings WHERE field_b = ?)")
            params += [field, field]
        # Named, so the planner cannot trade them for a walk of the table (rows of ~1 KB) in id order.
        index = "idx_experiments_pairing_status" if field else ("idx_experiments_status" if status
                                                               else "idx_experiments_id")
        source = f"experiments INDEXED BY {index}"
        clause = ("WHERE " + " AND ".join(where)) if where else ""
        total = self.query(f"SELECT COUNT(*) AS n FROM {source} {clause}", tuple(params))[0]["n"]
        latest = f"""(SELECT {{}} FROM benchmark_runs b WHERE b.experiment_id = e.id
                      AND b.suite NOT IN ({HIDDEN_SQL}) ORDER BY b.id DESC LIMIT 1)"""
        rows = self.query(
            f"""WITH page(id) AS (SELECT id FROM {source} {clause} ORDER BY id DESC LIMIT ? OFFSET ?)
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
                ORDER BY e.id DESC""", (*params, limit, offset))
        return rows, total

    def leaderboard(self, *, limit: int, offset: int, suite: str | None = None
                    ) -> tuple[list[dict[str, Any]], int]:
        """Experiments by their best geometric-mean loss ratio (visible suites), lowest first. The page
        comes from a covering index on (suite,) ratio and id; only its rows are joined."""
        params: tuple[str, ...]
        if suite:
            page = ("SELECT experiment_id AS id, best_ratio AS ratio FROM leader WHERE suite = ? "
                    "ORDER BY best_ratio, experiment_id")
            params = (suite,)
            total = self.query("SELECT COUNT(*) AS n FROM leader WHERE suite = ?", params)[0]["n"]
        else:
            page = ("SELECT id, best_ratio AS ratio FROM experiments WHERE best_ratio IS NOT NULL "
                    "ORDER BY best_ratio, id")
            params = ()
            total = self.query("SELECT COUNT(*) AS n FROM experiments WHERE best_ratio IS NOT NULL")[0]["n"]
        rows = self.query(
            f"""WITH page(id, ratio) AS ({page} LIMIT ? OFFSET ?)
                SELECT e.id, e.name, p.field_a, p.field_b, page.ratio AS geomean_ratio,
                       (SELECT outcome FROM benchmark_runs b WHERE b.experiment_id = e.id
                        AND b.suite NOT IN ({HIDDEN_SQL}) AND b.geomean_ratio = page.ratio LIMIT 1) AS outcome,
                       (SELECT verdict FROM verdicts v WHERE v.experiment_id = e.id) AS verdict
                FROM page JOIN experiments e ON e.id = page.id JOIN pairings p ON p.id = e.pairing_id
                ORDER BY page.ratio ASC, e.id ASC""", (*params, limit, offset))
        return rows, total

    def counts(self) -> dict[str, int]:
        return {table: self.query(f"SELECT COUNT(*) AS n FROM {table}")[0]["n"] for table in TABLES}

    def next_claim_position(self) -> tuple[int, list[int]]:
        """The position the next lab-wide claim test would take, and the positions of discoveries so far."""
        rows = self.query("SELECT discovery FROM claim_tests ORDER BY id")
        return len(rows) + 1, [i + 1 for i, row in enumerate(rows) if row["discovery"]]

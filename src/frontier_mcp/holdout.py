"""The holdout as a budgeted resource: how often it may be consulted, and what a consultation tells.

A hidden suite stops protecting anything once a model can query it freely: each answer leaks a
little about the hidden problems, and enough answers let a candidate be fitted to them (Dwork et
al. 2015, "The reusable holdout"). So the holdout answers one bit (the gate passed or not), and
only so many times per lineage (an experiment, its ancestors and descendants) and per lab per day.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from .archive import Archive

DAY_SECONDS = 86_400.0
PER_LINEAGE_PER_DAY = 2
PER_LAB_PER_DAY = 10


@dataclass(frozen=True)
class HoldoutBudget:
    lineage_used: int
    lab_used: int

    @property
    def lineage_left(self) -> int:
        return max(0, PER_LINEAGE_PER_DAY - self.lineage_used)

    @property
    def lab_left(self) -> int:
        return max(0, PER_LAB_PER_DAY - self.lab_used)

    @property
    def available(self) -> bool:
        return self.lineage_left > 0 and self.lab_left > 0

    def describe(self) -> str:
        return (f"holdout consultations left in the last 24 h: {self.lineage_left} of {PER_LINEAGE_PER_DAY} for this "
                f"lineage, {self.lab_left} of {PER_LAB_PER_DAY} for the lab")


def lineage_ids(archive: Archive, experiment_id: int) -> set[int]:
    """Every experiment of the family tree this experiment belongs to (from its root down)."""
    root = archive.lineage(experiment_id)[0]["id"]
    return {root, *(row["id"] for row in archive.descendants(root))}


def budget(archive: Archive, experiment_id: int, now: float | None = None) -> HoldoutBudget:
    since = (time.time() if now is None else now) - DAY_SECONDS
    runs = archive.holdout_runs_since(since)
    family = lineage_ids(archive, experiment_id)
    return HoldoutBudget(lineage_used=sum(1 for r in runs if r["experiment_id"] in family), lab_used=len(runs))

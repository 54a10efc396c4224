"""Typed shapes of what the archive returns, and the one decoder of archived benchmark reports.

A benchmark report is stored as the JSON of `protocol.BenchmarkReport`; `load_report` is the only
way back to the model, for every renderer and tool. Reports archived by an older frontier-mcp
lack fields added since: they load with neutral values (None, empty, NaN for an unknown number)
instead of failing, so an old lab's pages still render.
"""

from __future__ import annotations

import json
import math
import types
import typing
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypedDict, Union

from pydantic import BaseModel

if TYPE_CHECKING:
    from ..protocol import BenchmarkReport, SuiteSummary


class ExperimentSummary(TypedDict):
    """One experiment for listings and trees: its latest visible run, holdout outcome and verdict."""

    id: int
    name: str
    status: str
    parent_id: int | None
    created_at: float
    field_a: str
    field_b: str
    verdict: str | None
    suite: str | None
    outcome: str | None
    geomean_ratio: float | None
    holdout: str | None


class PairingRow(TypedDict):
    pair_key: str
    proposed: int
    experiments: int
    best_ratio: float | None
    wins: int
    failures: int
    last_proposed: float


class Relatives(TypedDict):
    count: int
    best: dict[str, Any] | None
    worst: dict[str, Any] | None
    lessons: list[dict[str, Any]]


def is_hidden(suite: str) -> bool:
    """A hidden suite's problems never reach the model or a page; a suite this version does not know
    fails closed."""
    from ..protocol import SUITES

    known = SUITES.get(suite)
    return known is None or known.hidden


def _neutral(annotation: Any) -> Any:
    """The value a field missing from an old report takes: None where allowed, else empty or NaN."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (Union, types.UnionType) and type(None) in args:
        return None
    if origin in (list, tuple, set) or annotation in (list, tuple, set):
        return []
    if origin is dict or annotation is dict:
        return {}
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return _filled(annotation, {})
    return {str: "", int: 0, float: math.nan, bool: False}.get(annotation)


def _model_in(annotation: Any) -> tuple[type[BaseModel] | None, str]:
    """(the model class inside `annotation`, and how it holds them: "one", "list" or "dict" values)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, "one"
    for arg in typing.get_args(annotation):
        found, how = _model_in(arg)
        if found is not None:
            origin = typing.get_origin(annotation)
            return found, "list" if origin is list else "dict" if origin is dict else how
    return None, "one"


def _filled(model: type[BaseModel], data: Any) -> Any:
    if not isinstance(data, Mapping):
        return data
    out = dict(data)
    for name, info in model.model_fields.items():
        key = info.alias or name
        if key not in out:
            if info.is_required():
                out[key] = _neutral(info.annotation)
            continue
        inner, how = _model_in(info.annotation)
        if inner is not None:
            value = out[key]
            if how == "list" and isinstance(value, list):
                out[key] = [_filled(inner, item) for item in value]
            elif how == "dict" and isinstance(value, Mapping):
                out[key] = {k: _filled(inner, item) for k, item in value.items()}
            else:
                out[key] = _filled(inner, value)
    return out


def load_report(raw: str | bytes | Mapping[str, Any] | BaseModel | None) -> BenchmarkReport:
    """An archived report (JSON text, a decoded dict, or structured tool output) as the typed model."""
    from ..protocol import BenchmarkReport

    if isinstance(raw, BenchmarkReport):
        return raw
    if isinstance(raw, BaseModel):
        raw = raw.model_dump(mode="json")
    data = json.loads(raw) if isinstance(raw, str | bytes) else (raw or {})
    return BenchmarkReport.model_validate(_filled(BenchmarkReport, data))


def visible_report(run: Mapping[str, Any]) -> BenchmarkReport | SuiteSummary:
    """A benchmark run's report as the model may see it: a hidden suite's verdict, never its problems."""
    report = load_report(run["summary"])
    return report.summary() if is_hidden(run["suite"]) else report

"""The field catalog, and how a pair of rarely connected fields is chosen.

Weights favour pairs the archive has never proposed, fields the archive has rarely used, and
steer away from pairs whose experiments failed. A proposed pair is not proposed again unless the
caller allows repeats or every pair has been used.
"""

from __future__ import annotations

import functools
import itertools
import random
import tomllib
from collections import Counter
from importlib import resources
from typing import Any

from pydantic import BaseModel, Field


class FieldCard(BaseModel):
    id: str
    name: str
    area: str = Field(description="pure, applied, physics or cs")
    objects: list[str] = Field(description="key objects of the field")
    theorems: list[str] = Field(description="key theorems or results")
    optimization_angle: str = Field(description="why the field might matter for non-convex optimization")


@functools.cache
def catalog() -> dict[str, FieldCard]:
    text = resources.files("frontier_mcp").joinpath("data/fields.toml").read_text()
    cards = [FieldCard(**entry) for entry in tomllib.loads(text)["field"]]
    return {card.id: card for card in cards}


def pair_key(a: str, b: str) -> str:
    return "|".join(sorted((a, b)))


class NoPairLeft(ValueError):
    pass


def choose_pair(usage: dict[str, dict[str, Any]], *, include: list[str], exclude: list[str],
                seed: int | None, allow_repeat: bool) -> tuple[str, str]:
    """Pick two distinct fields at random, weighted toward unexplored combinations."""
    fields = catalog()
    unknown = [f for f in [*include, *exclude] if f not in fields]
    if unknown:
        raise ValueError(f"unknown field ids {unknown}; valid ids include {sorted(fields)[:8]}... "
                         "(read the resource frontier://fields for the full catalog)")
    if len(include) == 2:
        a, b = include
        if a == b:
            raise ValueError("include names the same field twice; give two different fields")
        if pair_key(a, b) in usage and not allow_repeat:
            raise NoPairLeft(f"the pair {a} × {b} was proposed before (pass allow_repeat=true to reuse it)")
        return a, b
    pool = [f for f in fields if f not in exclude]
    field_use: Counter[str] = Counter()
    for key, used in usage.items():
        for name in key.split("|"):
            field_use[name] += used["proposed"]
    candidates = []
    for a, b in itertools.combinations(sorted(pool), 2):
        if include and a not in include and b not in include:
            continue
        row: dict[str, Any] | None = usage.get(pair_key(a, b))
        if row and not allow_repeat:
            continue
        weight = 1.0 / (1 + field_use[a]) / (1 + field_use[b])
        if fields[a].area != fields[b].area:
            weight *= 2.0  # pairs across areas are the ones rarely connected
        if row:
            weight /= (1 + row["proposed"]) * (1 + 2 * row["failures"])
        candidates.append(((a, b), weight))
    if not candidates:
        raise NoPairLeft("every pair matching these constraints has been proposed; "
                         "pass allow_repeat=true or change include/exclude")
    rng = random.Random(seed)
    pairs, weights = zip(*candidates, strict=True)
    a, b = rng.choices(pairs, weights=weights, k=1)[0]
    return (a, b) if rng.random() < 0.5 else (b, a)

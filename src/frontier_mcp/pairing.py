"""The field catalog, and how a pair of rarely connected fields is chosen.

Weights favour pairs the archive has never proposed, fields the archive has rarely used, and
steer away from pairs whose experiments failed. A proposed pair is not proposed again unless the
caller allows repeats or every pair has been used.
"""

from __future__ import annotations

import difflib
import functools
import itertools
import random
import re
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


def normalize(text: str) -> str:
    """Lower case; runs of spaces, underscores and hyphens become one hyphen; other punctuation goes."""
    text = re.sub(r"[\s_\-]+", "-", text.strip().lower())
    return re.sub(r"[^a-z0-9-]", "", text).strip("-")


@functools.cache
def aliases() -> dict[str, str]:
    """Every spelling that names one field unambiguously -> its id.

    The id and the full name are always aliases; so are the name without its parenthesis, the text in
    the parenthesis, and each half of a name "X and Y", when no other field claims the same spelling."""
    exact: dict[str, str] = {}
    loose: dict[str, set[str]] = {}
    for card in catalog().values():
        exact[normalize(card.id)] = card.id
        exact[normalize(card.name)] = card.id
        bare = re.sub(r"\(.*?\)", "", card.name)
        parts = [bare, *re.findall(r"\((.*?)\)", card.name), *re.split(r"\s+and\s+", bare)]
        for part in parts:
            loose.setdefault(normalize(part), set()).add(card.id)
    for key, ids in loose.items():
        if key and key not in exact and len(ids) == 1:
            exact[key] = next(iter(ids))
    return exact


def nearest(text: str, n: int = 3) -> list[str]:
    """The field ids closest to `text` (by id or by name), best first."""
    table = aliases()
    keys = difflib.get_close_matches(normalize(text), list(table), n=4 * n, cutoff=0.5)
    found: list[str] = []
    for key in keys:
        if table[key] not in found:
            found.append(table[key])
    return found[:n]


def resolve_field(text: str) -> str:
    """A field id from an id or a name, in any case and with spaces, underscores or hyphens.

    Raises ValueError naming the nearest ids when nothing matches."""
    field = aliases().get(normalize(text))
    if field is not None:
        return field
    close = nearest(text)
    hint = (f"did you mean {', '.join(close)}?" if close
            else f"ids look like {', '.join(sorted(catalog())[:4])}")
    raise ValueError(f"unknown field {text!r}: {hint} (ids and names both work, in any case; "
                     "the resource frontier://fields lists all of them)")


def complete_field(prefix: str, limit: int = 100) -> list[str]:
    """Field ids for a completion request: those whose id or name starts with the prefix, then those
    with a word that does (\"matrix\" finds random-matrix-theory)."""
    key = normalize(prefix)
    cards = sorted(catalog().values(), key=lambda card: card.id)
    starts = [c.id for c in cards if c.id.startswith(key) or normalize(c.name).startswith(key)]
    words = [c.id for c in cards if c.id not in starts
             and any(word.startswith(key) for word in f"{c.id}-{normalize(c.name)}".split("-"))]
    return (starts + words)[:limit]


def pair_key(a: str, b: str) -> str:
    return "|".join(sorted((a, b)))


class NoPairLeft(ValueError):
    pass


def choose_pair(usage: dict[str, dict[str, Any]], *, include: list[str], exclude: list[str],
                seed: int | None, allow_repeat: bool) -> tuple[str, str]:
    """Pick two distinct fields at random, weighted toward unexplored combinations."""
    fields = catalog()
    include = [resolve_field(f) for f in include]
    exclude = [resolve_field(f) for f in exclude]
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

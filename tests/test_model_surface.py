"""What a model meets on the tool surface: field names it may use, completions, and error texts that
say what to do. The server runs in memory (no cargo, no benchmark), so these are fast tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp_types import PromptReference, ResourceTemplateReference

from frontier_mcp.archive import Archive
from frontier_mcp.pairing import catalog, choose_pair, complete_field, resolve_field
from frontier_mcp.server import build_server
from frontier_mcp.settings import load_settings
from frontier_mcp.validate import normalized_hash

from .test_validate import GOOD

pytestmark = pytest.mark.anyio


def seed_experiments(home: Path, count: int) -> list[int]:
    archive = Archive(home / "state.db")
    try:
        pairing = archive.add_pairing("knot-theory", "fluid-dynamics", None)
        return [archive.add_experiment(name=f"seeded-{i}", pairing_id=pairing, parent_id=None, source=GOOD,
                                       normalized_sha256=normalized_hash(GOOD), statement="A seeded experiment.",
                                       mechanism="Plain SGD.", prediction="Nothing.")
                for i in range(count)]
    finally:
        archive.close()


@pytest.fixture
async def memory_client(tmp_path: Path) -> AsyncIterator[Client]:
    home = tmp_path / "lab"
    seed_experiments(home, 12)
    async with Client(build_server(load_settings(home=home, environ={}))) as connected:
        yield connected


def text_of(result: Any) -> str:
    return " ".join(getattr(c, "text", "") for c in result.content)


# -- field names ------------------------------------------------------------------------------

@pytest.mark.parametrize(("spelling", "field"), [
    ("random matrix theory", "random-matrix-theory"),
    ("Random Matrix Theory", "random-matrix-theory"),
    ("random_matrix_theory", "random-matrix-theory"),
    ("  RANDOM-matrix  theory ", "random-matrix-theory"),
    ("p adic analysis", "p-adic-analysis"),
    ("Persistent homology (topological data analysis)", "persistent-homology"),
    ("topological data analysis", "persistent-homology"),
    ("Lie groups", "lie-theory"),
])
def test_names_and_ids_resolve_in_any_spelling(spelling: str, field: str) -> None:
    assert resolve_field(spelling) == field


def test_every_catalog_id_and_name_resolves_to_itself() -> None:
    for card in catalog().values():
        assert resolve_field(card.id) == card.id
        assert resolve_field(card.name) == card.id
        assert resolve_field(card.name.upper()) == card.id


def test_a_miss_names_the_nearest_ids() -> None:
    with pytest.raises(ValueError, match="did you mean knot-theory") as caught:
        resolve_field("knot theroy")
    assert len(str(caught.value)) < 400
    with pytest.raises(ValueError, match="unknown field 'xyzzy'"):
        resolve_field("xyzzy")


def test_choose_pair_takes_names() -> None:
    pair = choose_pair({}, include=["Knot theory", "random matrix theory"], exclude=[], seed=1, allow_repeat=False)
    assert pair == ("knot-theory", "random-matrix-theory")
    with pytest.raises(ValueError, match="same field twice"):
        choose_pair({}, include=["Knot theory", "knot-theory"], exclude=[], seed=1, allow_repeat=False)
    for seed in range(20):
        assert "knot-theory" not in choose_pair({}, include=[], exclude=["KNOT THEORY"], seed=seed,
                                                allow_repeat=False)


def test_field_completion_matches_prefixes_and_words() -> None:
    assert complete_field("rand")[:2] == ["random-matrix-theory", "randomized-linear-algebra"]
    assert "random-matrix-theory" in complete_field("matrix")
    assert "knot-theory" not in complete_field("rand")
    assert sorted(complete_field("")) == sorted(catalog())


async def test_propose_pairing_accepts_names_through_the_client(memory_client: Client) -> None:
    result = await memory_client.call_tool(
        "propose_pairing", {"include": ["random matrix theory", "Knot Theory"]})
    assert not result.is_error, text_of(result)
    assert result.structured_content is not None
    assert result.structured_content["field_a"]["id"] == "random-matrix-theory"
    assert result.structured_content["field_b"]["id"] == "knot-theory"


async def test_propose_pairing_miss_suggests_ids(memory_client: Client) -> None:
    result = await memory_client.call_tool("propose_pairing", {"include": ["random matrix thoery"]})
    assert result.is_error
    text = text_of(result)
    assert "did you mean random-matrix-theory" in text
    assert len(text) < 400


# -- completions --------------------------------------------------------------------------------

async def test_research_brief_completes_field_ids(memory_client: Client) -> None:
    assert memory_client.server_capabilities is not None
    assert memory_client.server_capabilities.completions is not None
    ref = PromptReference(type="ref/prompt", name="research_brief")
    done = await memory_client.complete(ref, {"name": "field_a", "value": "rand"})
    assert done.completion.values[:2] == ["random-matrix-theory", "randomized-linear-algebra"]
    everything = await memory_client.complete(ref, {"name": "field_b", "value": ""})
    assert len(everything.completion.values) <= 100
    assert everything.completion.total == len(catalog())
    assert everything.completion.has_more == (len(catalog()) > 100)
    other = await memory_client.complete(ref, {"name": "field_b", "value": "random-m"},
                                         context_arguments={"field_a": "random-matrix-theory"})
    assert other.completion.values == []


async def test_experiment_templates_complete_ids(memory_client: Client) -> None:
    ref = ResourceTemplateReference(type="ref/resource", uri="frontier://experiments/{experiment_id}")
    done = await memory_client.complete(ref, {"name": "experiment_id", "value": "1"})
    assert done.completion.values == ["12", "11", "10", "1"]
    source = ResourceTemplateReference(type="ref/resource", uri="frontier://sources/{experiment_id}")
    assert len((await memory_client.complete(source, {"name": "experiment_id", "value": ""})).completion.values) == 12
    iterate = PromptReference(type="ref/prompt", name="iterate")
    assert (await memory_client.complete(iterate, {"name": "experiment_id", "value": "#2"})).completion.values == ["2"]
    assert (await memory_client.complete(ref, {"name": "experiment_id", "value": "x"})).completion.values == []


async def test_other_arguments_complete_to_nothing(memory_client: Client) -> None:
    ref = PromptReference(type="ref/prompt", name="translate")
    assert (await memory_client.complete(ref, {"name": "conjecture", "value": "a"})).completion.values == []

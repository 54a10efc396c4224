import pytest

from frontier_mcp.pairing import NoPairLeft, catalog, choose_pair, pair_key


def test_catalog_has_enough_well_formed_fields() -> None:
    cards = catalog()
    assert len(cards) >= 80
    assert {card.area for card in cards.values()} == {"pure", "applied", "physics", "cs"}
    assert all(card.objects and card.theorems and card.optimization_angle for card in cards.values())


def test_a_pair_is_never_proposed_twice_unless_asked() -> None:
    usage: dict[str, dict[str, int]] = {}
    include = ["p-adic-analysis"]
    partners = len(catalog()) - 1
    for seed in range(partners):
        a, b = choose_pair(usage, include=include, exclude=[], seed=seed, allow_repeat=False)
        key = pair_key(a, b)
        assert key not in usage
        usage[key] = {"proposed": 1, "experiments": 0, "failures": 0}
    with pytest.raises(NoPairLeft):
        choose_pair(usage, include=include, exclude=[], seed=0, allow_repeat=False)
    assert "p-adic-analysis" in choose_pair(usage, include=include, exclude=[], seed=0, allow_repeat=True)


def test_steering_and_reproducibility() -> None:
    usage: dict[str, dict[str, int]] = {}
    first = choose_pair(usage, include=[], exclude=["knot-theory"], seed=42, allow_repeat=False)
    assert first == choose_pair(usage, include=[], exclude=["knot-theory"], seed=42, allow_repeat=False)
    assert "knot-theory" not in first
    assert choose_pair(usage, include=["knot-theory", "fluid-dynamics"], exclude=[], seed=1,
                       allow_repeat=False) == ("knot-theory", "fluid-dynamics")
    with pytest.raises(ValueError, match="unknown field"):
        choose_pair(usage, include=["no-such-field"], exclude=[], seed=1, allow_repeat=False)

"""The delta-versus-replace cost model (nftwl.costs)."""

from __future__ import annotations

import pytest

from nftwl.costs import DEFAULT_COSTS, CostModel


class TestCostModel:
    @pytest.mark.parametrize("interval", [True, False])
    def test_no_change_costs_nothing_and_never_replaces(self, interval: bool) -> None:
        """A set with nothing to add or delete has a zero delta, so it is never replaced."""
        assert DEFAULT_COSTS.delta(interval, 50_000, 0, 0) == 0.0
        assert not DEFAULT_COSTS.prefer_replace(interval, 50_000, 50_000, 0, 0)

    @pytest.mark.parametrize("interval", [True, False])
    def test_replacing_with_nothing_still_costs_something(self, interval: bool) -> None:
        """Flushing a set to empty has a positive price (so an equal delta is not beaten by 0)."""
        assert DEFAULT_COSTS.replace(interval, 0) > 0

    def test_interval_delta_grows_with_the_live_size(self) -> None:
        """An interval-set delta gets dearer as the live set grows (libnftables refetches it)."""
        small = DEFAULT_COSTS.delta(True, 1_000, 1, 1)
        big = DEFAULT_COSTS.delta(True, 100_000, 1, 1)
        assert big > 50 * small

    def test_hash_delta_does_not_depend_on_the_live_size(self) -> None:
        """A hash-set delta costs the same whatever the set's size."""
        assert DEFAULT_COSTS.delta(False, 10, 5, 5) == DEFAULT_COSTS.delta(False, 1_000_000, 5, 5)

    def test_deletes_dominate_on_interval_sets(self) -> None:
        """On a big interval set, one delete costs more than one add."""
        assert DEFAULT_COSTS.delta(True, 20_000, 0, 1) > DEFAULT_COSTS.delta(True, 20_000, 1, 0)

    def test_replace_grows_with_the_new_size(self) -> None:
        """A full replace costs in proportion to what is loaded."""
        assert DEFAULT_COSTS.replace(True, 20_000) > 10 * DEFAULT_COSTS.replace(True, 1_000)

    def test_emptying_a_big_set_is_a_replace(self) -> None:
        """Deleting everything from a big set is cheaper as a flush than element by element."""
        assert DEFAULT_COSTS.prefer_replace(True, 10_000, 0, 0, 10_000)
        assert DEFAULT_COSTS.prefer_replace(False, 10_000, 0, 0, 10_000)

    def test_custom_model_changes_the_choice(self) -> None:
        """The choice follows the constants: with free deletes, a delta always wins."""
        free_deletes = CostModel(
            fetch_base=0.0, fetch_growth=0.0, delete_base=0.0, delete_growth=0.0
        )
        assert not free_deletes.prefer_replace(True, 10_000, 9_000, 0, 1_000)
        dear_deletes = CostModel(delete_base=1e6)
        assert dear_deletes.prefer_replace(True, 10, 9, 0, 1)

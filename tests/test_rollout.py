"""The arithmetic of a rollout: shares, batches and the failure allowance."""

from __future__ import annotations

import pytest

from controller.rollout import Share, failures_allowed, plan_batches

HOSTS = [f"vm{index}" for index in range(1, 11)]


@pytest.mark.parametrize(("text", "total", "count"), [
    ("3", 10, 3), ("0", 10, 0), ("25%", 10, 3), ("10%", 5, 1), ("100%", 7, 7), ("0%", 9, 0),
])
def test_share_counts_hosts_absolute_or_rounded_up_percent(text: str, total: int,
                                                           count: int) -> None:
    assert Share.parse(text).of(total) == count


@pytest.mark.parametrize("text", ["x", "-1", "150%", "1.5", ""])
def test_share_rejects_what_is_not_a_count(text: str) -> None:
    with pytest.raises(ValueError, match=r"N or N%|out of range"):
        Share.parse(text)


def test_canary_goes_alone_then_the_rest_in_batches() -> None:
    batches = plan_batches(HOSTS, canary=1, batch=Share.parse("4"))
    assert batches == [["vm1"], ["vm2", "vm3", "vm4", "vm5"], ["vm6", "vm7", "vm8", "vm9"],
                       ["vm10"]]


def test_without_batch_everything_after_the_canary_goes_at_once() -> None:
    assert plan_batches(HOSTS, canary=2, batch=None) == [HOSTS[:2], HOSTS[2:]]
    assert plan_batches(HOSTS, canary=0, batch=None) == [HOSTS]


def test_percent_batches_are_of_all_selected_hosts() -> None:
    batches = plan_batches(HOSTS, canary=0, batch=Share.parse("30%"))
    assert [len(batch) for batch in batches] == [3, 3, 3, 1]


def test_a_canary_larger_than_the_fleet_is_the_whole_fleet() -> None:
    assert plan_batches(HOSTS[:2], canary=5, batch=None) == [HOSTS[:2]]


@pytest.mark.parametrize(("text", "total", "allowed"), [
    (None, 10, 10), ("0", 10, 0), ("2", 10, 2), ("20%", 10, 2), ("25%", 10, 2), ("0%", 5, 0),
])
def test_failures_allowed_follows_ansible_exceeding_rule(text: str | None, total: int,
                                                         allowed: int) -> None:
    share = Share.parse(text) if text is not None else None
    assert failures_allowed(share, total) == allowed

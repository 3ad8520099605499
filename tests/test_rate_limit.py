"""The sync rate limiter: one slot per client per interval, memory bounded."""

from __future__ import annotations

import pytest

from controller.rate_limit import SyncRateLimiter, retry_after_header


class Clock:
    """A clock the test moves by hand, so expiry is checked without waiting."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_second_attempt_within_the_interval_waits_for_the_rest_of_it() -> None:
    clock = Clock()
    limiter = SyncRateLimiter(interval_s=60, clock=clock)

    assert limiter.try_acquire("10.0.0.1") == 0.0
    clock.now += 20
    assert limiter.try_acquire("10.0.0.1") == pytest.approx(40)


def test_slot_returns_once_the_interval_has_passed() -> None:
    clock = Clock()
    limiter = SyncRateLimiter(interval_s=60, clock=clock)
    limiter.try_acquire("10.0.0.1")

    clock.now += 60

    assert limiter.try_acquire("10.0.0.1") == 0.0


def test_clients_are_limited_separately() -> None:
    limiter = SyncRateLimiter(interval_s=60, clock=Clock())

    assert limiter.try_acquire("10.0.0.1") == 0.0
    assert limiter.try_acquire("10.0.0.2") == 0.0
    assert limiter.try_acquire("10.0.0.1") > 0


def test_memory_stays_bounded_whatever_the_number_of_clients() -> None:
    clock = Clock()
    limiter = SyncRateLimiter(interval_s=60, max_clients=100, clock=clock)

    for number in range(10_000):
        limiter.try_acquire(f"client-{number}")
        clock.now += 0.1
        assert len(limiter) <= 100


def test_full_table_makes_new_clients_wait_rather_than_evicting() -> None:
    clock = Clock()
    limiter = SyncRateLimiter(interval_s=60, max_clients=2, clock=clock)
    limiter.try_acquire("a")
    clock.now += 10
    limiter.try_acquire("b")

    assert limiter.try_acquire("c") == pytest.approx(50)
    assert limiter.try_acquire("a") == pytest.approx(50)

    clock.now += 50
    assert limiter.try_acquire("c") == 0.0
    assert limiter.try_acquire("a") > 0


def test_expired_entries_are_dropped() -> None:
    clock = Clock()
    limiter = SyncRateLimiter(interval_s=60, clock=clock)
    for number in range(50):
        limiter.try_acquire(f"client-{number}")

    clock.now += 61
    limiter.try_acquire("late")

    assert len(limiter) == 1


def test_zero_interval_disables_the_limit_and_stores_nothing() -> None:
    limiter = SyncRateLimiter(interval_s=0)

    assert [limiter.try_acquire("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert len(limiter) == 0


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        SyncRateLimiter(interval_s=-1)
    with pytest.raises(ValueError):
        SyncRateLimiter(max_clients=0)


@pytest.mark.parametrize(
    ("seconds", "header"), [(0.001, "1"), (1.0, "1"), (1.2, "2"), (59.9, "60")]
)
def test_retry_after_is_whole_seconds_rounded_up(seconds: float, header: str) -> None:
    assert retry_after_header(seconds) == header


def test_a_released_slot_may_be_taken_again_at_once() -> None:
    limiter = SyncRateLimiter(interval_s=60, clock=lambda: 100.0)
    assert limiter.try_acquire("10.0.0.1") == 0.0

    limiter.release("10.0.0.1")
    limiter.release("never-seen")

    assert limiter.try_acquire("10.0.0.1") == 0.0
    assert limiter.try_acquire("10.0.0.1") > 0

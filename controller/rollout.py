"""The shape of a rollout: canary first, then batches, and when to stop starting hosts.

Pure arithmetic with no I/O, so that every rule can be tested on its own. Counts
are given as ``N`` or ``N%`` of the hosts selected, as Ansible's ``serial`` and
``max_fail_percentage`` are.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

import click

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Share:
    """A count of hosts, absolute (``3``) or relative (``25%``)."""

    amount: float
    percent: bool

    @classmethod
    def parse(cls, text: str) -> Share:
        """``"3"`` or ``"25%"``; raises ValueError with what to write instead."""
        stripped = text.strip()
        percent = stripped.endswith("%")
        number = stripped.removesuffix("%").strip()
        try:
            amount = float(number) if percent else int(number)
        except ValueError:
            raise ValueError(f"{text!r} is not a count: write N or N% (e.g. 2 or 25%)") \
                from None
        if amount < 0 or (percent and amount > 100):
            raise ValueError(f"{text!r} is out of range: use 0 to 100% or a count from 0")
        return cls(amount, percent)

    def of(self, total: int) -> int:
        """How many hosts of ``total`` this share is (a percentage rounds up, min 1)."""
        if not self.percent:
            return int(self.amount)
        if self.amount == 0:
            return 0
        return max(1, math.ceil(total * self.amount / 100))

    def __str__(self) -> str:
        return f"{self.amount:g}%" if self.percent else str(int(self.amount))


class ShareType(click.ParamType):  # type: ignore[type-arg]
    """The click type of ``--batch`` and ``--max-fail``."""

    name = "N|N%"

    def convert(self, value: object, param: click.Parameter | None,
                ctx: click.Context | None) -> Share:
        if isinstance(value, Share):
            return value
        try:
            return Share.parse(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


def plan_batches(hosts: Sequence[T], *, canary: int, batch: Share | None) -> list[list[T]]:
    """Split hosts into the canary batch (if any) and the batches after it."""
    batches: list[list[T]] = []
    remaining = list(hosts)
    if canary > 0:
        batches.append(remaining[:canary])
        remaining = remaining[canary:]
    size = batch.of(len(hosts)) if batch is not None else len(remaining)
    size = max(size, 1)
    batches.extend(remaining[start:start + size] for start in range(0, len(remaining), size))
    return [group for group in batches if group]


def failures_allowed(max_fail: Share | None, total: int) -> int:
    """How many failed hosts a rollout tolerates before it starts no more hosts."""
    if max_fail is None:
        return total
    if max_fail.percent:
        # Ansible's rule: stop once the failed share *exceeds* the percentage.
        return math.floor(total * max_fail.amount / 100)
    return int(max_fail.amount)

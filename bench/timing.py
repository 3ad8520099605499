"""Small timing helpers shared by the benchmarks."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field


def sample_ms(action: Callable[[], object], *, repeat: int, warmup: int = 3) -> list[float]:
    """Run ``action`` ``warmup`` times untimed, then ``repeat`` times; return milliseconds."""
    for _ in range(warmup):
        action()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


@dataclass
class Figure:
    name: str
    value: float
    unit: str
    target: float | None

    def line(self) -> str:
        if self.target is None:
            verdict = ""
        else:
            verdict = "  ok" if self.value <= self.target else "  OVER TARGET"
            bound = "=" if self.target == 0 else "<"
            verdict = f"  (target {bound} {self.target:g} {self.unit}){verdict}"
        return f"{self.name:<64} {self.value:10.2f} {self.unit}{verdict}"


@dataclass
class Figures:
    figures: list[Figure] = field(default_factory=list)

    def add(self, name: str, value: float, unit: str, target: float | None = None) -> None:
        figure = Figure(name, value, unit, target)
        self.figures.append(figure)
        print(figure.line(), flush=True)

    def add_median_ms(self, name: str, samples: list[float], target: float | None = None) -> None:
        self.add(f"{name} (median of {len(samples)})", statistics.median(samples), "ms", target)

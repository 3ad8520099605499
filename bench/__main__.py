"""Run every benchmark module: ``python -m bench [NAME ...]``."""

from __future__ import annotations

import importlib
import pkgutil
import sys

import bench
from bench.timing import Figures


def main(selected: list[str]) -> int:
    figures = Figures()
    names = sorted(
        info.name for info in pkgutil.iter_modules(bench.__path__) if info.name.startswith("bench_")
    )
    for name in names:
        if selected and not any(choice in name for choice in selected):
            continue
        print(f"== {name.removeprefix('bench_')}", flush=True)
        module = importlib.import_module(f"bench.{name}")
        module.run(figures)
    over = [figure for figure in figures.figures if figure.target is not None
            and figure.value > figure.target]
    print(f"== {len(figures.figures)} figures, {len(over)} over target")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

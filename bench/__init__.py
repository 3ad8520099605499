"""Benchmarks: ``make bench`` runs every ``bench/bench_*.py`` module and prints figures.

Each module defines ``run(figures: Figures) -> None`` and records its figures with
``figures.add``. Tests never assert times; these figures are where speed lives.
"""

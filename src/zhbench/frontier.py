"""The accuracy/latency frontier: which classifiers no other beats on both, and the best one within
a latency budget. Pure functions over (name, accuracy, seconds per sample) rows; the latency stage
measures the rows, the report reads them."""
from __future__ import annotations

from dataclasses import dataclass

# Latency budgets the report answers "which model?" for, in ms per title.
BUDGETS_MS = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0)


@dataclass(frozen=True)
class Point:
    name: str
    accuracy: float
    ms: float  # milliseconds per sample


def pareto_front(points: list[Point]) -> list[Point]:
    """The points no other point dominates (at least as accurate AND at least as fast, better in
    one), fastest first."""
    front = [p for p in points
             if not any(q.accuracy >= p.accuracy and q.ms <= p.ms and (q.accuracy > p.accuracy or q.ms < p.ms)
                        for q in points)]
    return sorted(front, key=lambda p: (p.ms, -p.accuracy, p.name))


def best_within(points: list[Point], budget_ms: float) -> Point | None:
    """The most accurate point at most `budget_ms` per sample (ties: the faster, then by name)."""
    fitting = [p for p in points if p.ms <= budget_ms]
    return max(fitting, key=lambda p: (p.accuracy, -p.ms, p.name), default=None)

"""The Pareto front and the best classifier within a latency budget."""
from zhbench.frontier import Point, best_within, pareto_front
from zhbench.ensemble import search_weights, weight_grid

import numpy as np


def test_front_keeps_what_nothing_beats_on_both():
    pts = [Point("fast", 0.80, 0.1), Point("slow-good", 0.90, 5.0), Point("dominated", 0.79, 0.2),
           Point("tie-slower", 0.90, 6.0), Point("mid", 0.85, 1.0)]
    assert [p.name for p in pareto_front(pts)] == ["fast", "mid", "slow-good"]
    assert best_within(pts, 0.5).name == "fast" and best_within(pts, 1.0).name == "mid"
    assert best_within(pts, 0.05) is None


def test_weight_grid_covers_the_simplex_and_the_search_is_chosen_on_dev():
    grid = list(weight_grid(3, 0.5))
    assert sorted(grid) == sorted([(0, 0, 1), (0, .5, .5), (0, 1, 0), (.5, 0, .5), (.5, .5, 0), (1, 0, 0)])
    labels = np.array([0, 1, 1, 0])
    good = np.array([[.9, .1], [.2, .8], [.3, .7], [.6, .4]])   # right on all four
    bad = np.array([[.1, .9], [.8, .2], [.6, .4], [.4, .6]])    # wrong on all four
    best = search_weights([bad, good], labels, 0.1)
    assert best.weights[1] >= 0.6 and best.dev_accuracy == 1.0 and len(best.trials) == 11

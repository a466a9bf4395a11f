"""Seeded hyper-parameter search on dev accuracy, shared by the tuned baselines: a fixed number of
optuna TPE trials (not a wall-clock budget), so one seed finds the same configuration on any
machine, with a progress bar that shows the best dev accuracy so far."""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Mapping

from tqdm.auto import tqdm

from zhbench.io import METRIC_DECIMALS

if TYPE_CHECKING:
    import optuna


def tpe_maximize(dev_accuracy: Callable[["optuna.Trial"], float], trials: int, seed: int, desc: str) -> "optuna.Study":
    """Run `trials` trials of `dev_accuracy` under a TPE sampler seeded with `seed`; the study."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # one log line per trial is the caller's
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    with tqdm(total=trials, desc=desc, unit="trial") as bar:

        def advance(study: optuna.Study, _trial: optuna.trial.FrozenTrial) -> None:
            bar.set_postfix(best_dev_accuracy=f"{study.best_value:.4f}")
            bar.update(1)

        study.optimize(dev_accuracy, n_trials=trials, callbacks=[advance])
    return study


def recordable(values: Mapping[str, int | float]) -> dict[str, int | float]:
    """Sampled floats cut to the decimals JSON records, so the recorded args are exactly the trained ones."""
    return {name: round(v, METRIC_DECIMALS) if isinstance(v, float) else v for name, v in values.items()}

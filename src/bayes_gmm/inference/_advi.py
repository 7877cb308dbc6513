"""Variational inference (mean-field or full-rank ADVI) with a stated stopping rule and restarts."""

from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pymc as pm
import xarray as xr

from bayes_gmm._interrupt import INTERRUPT
from bayes_gmm._validation import check_positive_float
from bayes_gmm.exceptions import IllConditionedCovarianceError
from bayes_gmm.inference._arviz import set_group
from bayes_gmm.inference._backends import single_threaded_blas

#: The variational methods, by PyMC's names: mean-field and full-rank ADVI.
ADVI_METHODS = ("advi", "fullrank_advi")


class ElboPlateau:
    """Stop when the ELBO stops improving: a PyMC ``pm.fit`` callback, called alike by the kernel's ADVI
    (:mod:`bayes_gmm.inference._advi_kernel`) after each step.

    Every ``window`` iterations, the mean loss (negative ELBO) of the last window is compared with the
    window before it; the fit has converged when the change is below ``tolerance`` relative to the
    loss's magnitude (per observation this is insensitive to the data size). Averaging over a window
    smooths the noise of the stochastic gradients (and of minibatches).
    """

    def __init__(self, window: int = 500, tolerance: float = 1e-4):
        self.window = window
        self.tolerance = tolerance
        self.converged_at: int | None = None

    def __call__(self, approx, loss_history, i):
        if i < 2 * self.window or i % self.window:
            return
        recent = np.mean(loss_history[-self.window :])
        before = np.mean(loss_history[-2 * self.window : -self.window])
        if abs(before - recent) <= self.tolerance * max(abs(recent), 1e-12):
            self.converged_at = i
            # PyMC logs this message (and, on any stop, "Interrupted at ...", see _quiet_early_stop)
            raise StopIteration(f"ADVI stopped: the ELBO converged at iteration {i:,d}")


class _DropInterruptedLine(logging.Filter):
    def __init__(self, stopper: ElboPlateau):
        super().__init__()
        self.stopper = stopper

    def filter(self, record: logging.LogRecord) -> bool:
        return self.stopper.converged_at is None or not record.getMessage().startswith("Interrupted at")


@contextmanager
def _quiet_early_stop(stopper: ElboPlateau):
    """Drop the "Interrupted at 6,999 [13%]" line PyMC logs when `stopper` ended the fit: nothing was
    interrupted (the stopper's own message says why it stopped)."""
    logger = logging.getLogger("pymc.variational.inference")
    line_filter = _DropInterruptedLine(stopper)
    logger.addFilter(line_filter)
    try:
        yield
    finally:
        logger.removeFilter(line_filter)


@dataclass(frozen=True)
class ADVIRun:
    """One variational fit: the approximation, its loss history and whether it met the stopping rule."""

    approximation: object
    loss_history: np.ndarray
    converged: bool
    final_elbo: float
    #: Iterations run (PyMC's loss history leaves out the one at which a callback stopped the fit).
    iterations: int


def run_advi(
    model: pm.Model,
    starts: list[dict[str, np.ndarray]],
    *,
    method: str,
    max_iter: int,
    tolerance: float,
    learning_rate: float,
    random_seed: int,
    progressbar: bool,
) -> tuple[ADVIRun, list[ADVIRun]]:
    """Fit one approximation per start point and return the best (highest final ELBO) and all runs.

    A run that reaches a NaN ELBO or a singular covariance raises a ValueError that says what to change,
    not the optimiser's or the likelihood kernel's own exception.
    """
    learning_rate = check_positive_float(
        learning_rate, "advi_learning_rate", example=" Use e.g. advi_learning_rate=0.01."
    )
    seeds = np.random.SeedSequence(random_seed).generate_state(len(starts))
    runs = []
    for start, seed in zip(starts, seeds, strict=True):
        stopper = ElboPlateau(tolerance=tolerance)
        try:
            with single_threaded_blas(), _quiet_early_stop(stopper):
                approx = pm.fit(
                    n=max_iter,
                    method=method,
                    model=model,
                    start=start,
                    obj_optimizer=pm.adam(learning_rate=learning_rate),
                    callbacks=[stopper],
                    random_seed=int(seed),
                    progressbar=progressbar,
                )
        except FloatingPointError:  # PyMC: "NaN occurred in optimization"
            raise advi_diverged(learning_rate) from None
        except ZeroDivisionError:  # the fused likelihood met a standard deviation of exactly 0
            raise IllConditionedCovarianceError(
                f"ADVI reached a covariance with a zero standard deviation (a collapsed component) with "
                f"advi_learning_rate={learning_rate}. Lower advi_learning_rate, use fewer components or "
                f"covariance_type='diag', or use method='nuts'."
            ) from None
        # pm.fit returns the approximation it has at a Ctrl-C: no further restarts (where the fit's handler
        # is on; a fit in another thread, or one that left SIGINT to the caller, is not stopped).
        INTERRUPT.check()
        losses = np.asarray(approx.hist, dtype=float)
        tail = losses[-min(len(losses), stopper.window) :]
        converged = stopper.converged_at is not None
        iterations = stopper.converged_at if converged else len(losses)
        runs.append(ADVIRun(approx, losses, converged, float(-np.mean(tail)), iterations))
    best = max(runs, key=lambda run: run.final_elbo)
    return best, runs


def fit_advi(
    model: pm.Model,
    starts: list[dict[str, np.ndarray]],
    *,
    draws: int,
    random_seed: int,
    draw_seed: int,
    **options,
):
    """PyMC's ADVI (``pm.fit``, compiled per model shape): :func:`run_advi`, then `draws` draws (seeded by
    `draw_seed`) of the best approximation.

    ``sample_stats`` holds the ELBO per iteration; ``attrs`` the back end ("pymc"), ``advi_converged``,
    ``advi_iterations``, ``advi_tolerance`` and ``elbo_final``. `options` are :func:`run_advi`'s keyword arguments.

    Whether the best run's ELBO plateaued is recorded, not warned about here: the fit's convergence
    verdict (:mod:`bayes_gmm.inference._verdict`) judges it and warns.
    """
    best, _ = run_advi(model, starts, random_seed=random_seed, **options)
    idata = best.approximation.sample(draws, random_seed=draw_seed)
    record_advi_run(idata, best, tolerance=options["tolerance"], backend="pymc")
    return idata


def record_advi_run(idata, best: ADVIRun, *, tolerance: float, backend: str) -> None:
    """The ELBO per iteration (``sample_stats``) and the run's ``attrs`` of an ADVI fit, for either back end."""
    set_group(idata, "sample_stats", xr.Dataset({"elbo": ("advi_iteration", -best.loss_history)}))
    idata.attrs.update(
        backend=backend,
        advi_converged=int(best.converged),
        advi_iterations=best.iterations,
        advi_tolerance=tolerance,
        elbo_final=best.final_elbo,
    )


def advi_diverged(learning_rate: float) -> ValueError:
    """The error of an ADVI run whose ELBO (or its gradient) stopped being finite."""
    return ValueError(
        f"ADVI diverged: the ELBO became NaN with advi_learning_rate={learning_rate}. Lower "
        f"advi_learning_rate (e.g. {learning_rate / 10:g}), or use method='nuts'."
    )

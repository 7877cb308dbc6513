"""ADVI on the model kernel: mean-field or full-rank Gaussian approximations fitted in NumPy, no compile.

The objective, the optimiser and the stopping rule are those of PyMC's ``pm.fit`` as :mod:`bayes_gmm.inference.
_advi` runs it; what differs is how the model's log-density and its gradient are computed. PyMC compiles
its graph of the model for every K, D and data shape; here they come from the shape-generic C entry point
of :mod:`bayes_gmm.models._model_kernel` that nutpie calls, compiled once and cached, so a fit of a new
model shape or data set compiles nothing.

The approximation q is a Gaussian on the unconstrained scale (the layout of the kernel and of
:mod:`bayes_gmm.models._unconstrained`):

- mean-field (``"advi"``): mean ``mu`` and log standard deviation ``omega`` per coordinate,
  ``theta = mu + exp(omega) * eps``;
- full-rank (``"fullrank_advi"``): mean ``mu`` and a lower-triangular Cholesky factor ``L`` packed by rows
  with the log of its diagonal, ``theta = mu + L eps``.

Each step draws ``eps ~ N(0, I)`` (:data:`OBJ_N_MC` draws, as ``pm.fit``), estimates the ELBO
``E_q[log p(theta)] + H[q]`` with the entropy in closed form, and takes one Adam step on its
reparameterisation gradient (``pm.adam``'s update with its defaults). On minibatches each step's
log-likelihood is that of rows drawn with replacement, each weighted ``n_samples / minibatch_size``
(the unbiased scaling of ``pm.Minibatch`` with ``total_size``).
"""

from __future__ import annotations

import ctypes
import functools
import logging
import math
from dataclasses import dataclass

import numpy as np
import pymc as pm
import xarray as xr
from pymc.backends.arviz import coords_and_dims_for_inferencedata, dict_to_dataset, find_constants, make_attrs

import bayes_gmm
from bayes_gmm.inference._advi import ADVIRun, ElboPlateau, advi_diverged, record_advi_run
from bayes_gmm.inference._arviz import set_group
from bayes_gmm.inference._nutpie_compile import (
    UNCONSTRAINED_DIM,
    kernel_arrays,
    model_structure,
    posterior_from_unconstrained,
)
from bayes_gmm.models._model_kernel import COVARIANCE_CODES, model_callbacks, model_header, n_unconstrained
from bayes_gmm.models._unconstrained import to_unconstrained

#: Draws of q per step for the ELBO's gradient: ``pm.fit``'s default (``obj_n_mc=None`` is one draw).
OBJ_N_MC = 1
#: ``pm.adam``'s defaults besides the learning rate.
ADAM_BETA1, ADAM_BETA2, ADAM_EPSILON = 0.9, 0.999, 1e-8
#: Where PyMC starts the scales: ``softplus(0)`` for mean-field, ``softplus(1)`` on the diagonal of the
#: full-rank factor (an identity matrix through PyMC's softplus), so both start from the same q as PyMC.
START_SD = {"advi": math.log(2.0), "fullrank_advi": math.log1p(math.e)}
_ENTROPY_PER_DIM = 0.5 * (1.0 + math.log(2.0 * math.pi))
_log = logging.getLogger(__name__)
_DOUBLE_P = ctypes.POINTER(ctypes.c_double)


class ModelDensity:
    """The log-density of a model of :func:`bayes_gmm.models.build_model` and its gradient, on the unconstrained
    scale, by the model kernel's compiled C entry point (no compile per model shape).

    Parameters
    ----------
    model : pymc.Model
        The model (fused likelihood); its data containers give the data, the weights and the priors.
    minibatch_size : int, optional
        Evaluate each call on this many rows drawn with replacement from `rng`, weighted
        ``n_samples / minibatch_size`` (times their sample weights): an unbiased estimate of the full data's.
    rng : numpy.random.Generator, optional
        Draws the minibatches; needed with `minibatch_size`.
    """

    def __init__(
        self, model: pm.Model, minibatch_size: int | None = None, rng: np.random.Generator | None = None
    ):
        covariance_type, self.n_components, n_features = model_structure(model)
        self.code = COVARIANCE_CODES[covariance_type]
        self._arrays = kernel_arrays(model)  # the header points into these
        self.n_dim = n_unconstrained(self.code, self.n_components, n_features)
        self.n_samples = self._arrays["data"].shape[1]
        self.minibatch_size = minibatch_size
        self._rng = rng
        self._theta, self._grad, self._logp = np.empty(self.n_dim), np.empty(self.n_dim), np.empty(1)
        self._pointers = [array.ctypes.data_as(_DOUBLE_P) for array in (self._theta, self._grad, self._logp)]
        self._logp_c = model_callbacks(covariance_type)[0].ctypes
        self._header_address = self._arrays["header"].ctypes.data

    def __call__(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """``(log p(theta), its gradient)``; non-finite values where the kernel reports them."""
        self._theta[:] = theta
        if self.minibatch_size is None:
            status = self._call(self._header_address)
        else:
            rows = self._rng.integers(0, self.n_samples, self.minibatch_size)
            data = np.ascontiguousarray(self._arrays["data"][:, rows])
            scale = self.n_samples / self.minibatch_size
            weights = (
                self._arrays["weights"][rows] * scale
                if self._arrays["weights"].size
                else np.full(rows.size, scale)
            )
            header = model_header(self.code, self.n_components, data, weights, self._arrays["hyper"])
            status = self._call(header.ctypes.data)
        if status not in (0, 3, 4):  # 3 and 4: a non-finite gradient or value, returned as they are
            raise RuntimeError(
                f"the model kernel failed (status {status}) at an unconstrained point of size {self.n_dim}"
            )
        return float(self._logp[0]), self._grad.copy()

    def _call(self, header_address: int) -> int:
        return self._logp_c(self.n_dim, *self._pointers, header_address)


def initial_params(method: str, mu: np.ndarray) -> np.ndarray:
    """q's flat parameters at mean `mu` with PyMC's starting scales: ``[mu, omega]`` or ``[mu, packed L]``."""
    n = mu.size
    log_sd = math.log(START_SD[method])
    if method == "advi":
        return np.concatenate([mu, np.full(n, log_sd)])
    rows, cols = _tril(n)
    return np.concatenate([mu, np.where(rows == cols, log_sd, 0.0)])


def cholesky_factor(method: str, params: np.ndarray, n: int) -> np.ndarray:
    """q's covariance factor: the (n, n) lower-triangular ``L`` (diagonal ``exp(omega)`` for mean-field)."""
    if method == "advi":
        return np.diag(np.exp(params[n:]))
    rows, cols = _tril(n)
    factor = np.zeros((n, n))
    factor[rows, cols] = np.where(rows == cols, np.exp(params[n:]), params[n:])
    return factor


def draw_q(method: str, params: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """Points of q from standard normal `noise` (..., n): ``mu + L eps``."""
    n = noise.shape[-1]
    if method == "advi":
        return params[:n] + np.exp(params[n:]) * noise
    return params[:n] + noise @ cholesky_factor(method, params, n).T


def entropy(method: str, params: np.ndarray, n: int) -> float:
    """The entropy of q in closed form: ``sum log diag L + n (1 + log 2 pi) / 2``."""
    log_diagonal = params[n:] if method == "advi" else params[n:][_diagonal_of_packed(n)]
    return float(np.sum(log_diagonal) + n * _ENTROPY_PER_DIM)


def elbo_and_gradient(
    method: str, params: np.ndarray, noise: np.ndarray, density
) -> tuple[float, np.ndarray]:
    """Monte Carlo ELBO at q's `params` for the draws `noise` (S, n), and its reparameterisation gradient.

    ``density(theta) -> (log p(theta), gradient)``. The entropy term and its gradient are exact.
    """
    n_draws, n = noise.shape
    points = draw_q(method, params, noise)
    log_p, gradient = 0.0, np.zeros_like(params)
    diagonal = None if method == "advi" else _diagonal_of_packed(n)
    rows, cols = (None, None) if method == "advi" else _tril(n)
    for point, eps in zip(points, noise, strict=True):
        value, grad = density(point)
        log_p += value / n_draws
        gradient[:n] += grad / n_draws
        if method == "advi":
            gradient[n:] += grad * eps * np.exp(params[n:]) / n_draws
        else:
            scale_grad = grad[rows] * eps[cols]
            scale_grad[diagonal] *= np.exp(params[n:][diagonal])  # through L_ii = exp(omega_i)
            gradient[n:] += scale_grad / n_draws
    if method == "advi":
        gradient[n:] += 1.0
    else:
        gradient[n:][diagonal] += 1.0
    return log_p + entropy(method, params, n), gradient


@functools.cache
def _tril(n: int) -> tuple[np.ndarray, np.ndarray]:
    return np.tril_indices(n)


@functools.cache
def _diagonal_of_packed(n: int) -> np.ndarray:
    rows, cols = _tril(n)
    return np.flatnonzero(rows == cols)


class Adam:
    """``pm.adam``'s update, minimising: ``params -= a_t m_t / (sqrt(v_t) + epsilon)`` in place."""

    def __init__(self, size: int, learning_rate: float):
        self.learning_rate = learning_rate
        self.t = 0
        self.m, self.v = np.zeros(size), np.zeros(size)

    def step(self, params: np.ndarray, grad: np.ndarray) -> None:
        self.t += 1
        a_t = self.learning_rate * math.sqrt(1.0 - ADAM_BETA2**self.t) / (1.0 - ADAM_BETA1**self.t)
        self.m *= ADAM_BETA1
        self.m += (1.0 - ADAM_BETA1) * grad
        self.v *= ADAM_BETA2
        self.v += (1.0 - ADAM_BETA2) * grad * grad
        params -= a_t * self.m / (np.sqrt(self.v) + ADAM_EPSILON)


@dataclass(frozen=True)
class GaussianApproximation:
    """A fitted q: the method and its flat parameters (see :func:`initial_params`)."""

    method: str
    params: np.ndarray
    n_dim: int

    @property
    def mean(self) -> np.ndarray:
        return self.params[: self.n_dim]

    def sample(self, draws: int, rng: np.random.Generator) -> np.ndarray:
        """`draws` unconstrained points of q, (draws, n_dim)."""
        return draw_q(self.method, self.params, rng.standard_normal((draws, self.n_dim)))


def run_kernel_advi(
    density: ModelDensity,
    starts: list[np.ndarray],
    *,
    method: str,
    max_iter: int,
    tolerance: float,
    learning_rate: float,
    rng: np.random.Generator,
    progressbar: bool,
) -> tuple[ADVIRun, list[ADVIRun]]:
    """Fit q from each unconstrained start point in turn; return the best run (highest final ELBO) and all.

    Each run stops at :class:`~bayes_gmm.inference._advi.ElboPlateau`'s rule or after `max_iter` steps. A
    Ctrl-C raises KeyboardInterrupt at once (no further runs).
    """
    runs = []
    for start in starts:
        params = initial_params(method, np.asarray(start, dtype=float))
        optimiser = Adam(params.size, learning_rate)
        stopper = ElboPlateau(tolerance=tolerance)
        losses = np.empty(max_iter)
        iterations = max_iter
        # An overflow makes the ELBO non-finite, which is reported below as a divergence.
        with _progress(progressbar, max_iter) as advance, np.errstate(over="ignore", invalid="ignore"):
            for i in range(max_iter):
                elbo, gradient = elbo_and_gradient(
                    method, params, rng.standard_normal((OBJ_N_MC, density.n_dim)), density
                )
                if not (math.isfinite(elbo) and np.all(np.isfinite(gradient))):
                    raise advi_diverged(learning_rate)
                losses[i] = -elbo
                optimiser.step(params, -gradient)
                advance(i + 1)
                try:
                    stopper(None, losses[: i + 1], i + 1)
                except StopIteration as stop:
                    _log.info(str(stop))
                    iterations = i + 1
                    break
        losses = losses[:iterations]
        tail = losses[-min(iterations, stopper.window) :]
        approximation = GaussianApproximation(method, params, density.n_dim)
        runs.append(
            ADVIRun(
                approximation, losses, stopper.converged_at is not None, float(-np.mean(tail)), iterations
            )
        )
    return max(runs, key=lambda run: run.final_elbo), runs


class _progress:
    """A rich progress bar of the steps when shown; ``advance(done)`` is cheap when it is not."""

    def __init__(self, shown: bool, total: int):
        self.shown, self.total = shown, total

    def __enter__(self):
        if not self.shown:
            return lambda done: None
        from rich.progress import Progress

        self._bar = Progress()
        self._bar.__enter__()
        task = self._bar.add_task("ADVI", total=self.total)
        return lambda done: done % 100 == 0 and self._bar.update(task, completed=done)

    def __exit__(self, *exc):
        if self.shown:
            self._bar.__exit__(*exc)


def fit_kernel_advi(
    model: pm.Model,
    starts: list[dict[str, np.ndarray]],
    *,
    method: str,
    draws: int,
    max_iter: int,
    tolerance: float,
    learning_rate: float,
    minibatch_size: int | None,
    rng: np.random.Generator,
    progressbar: bool,
) -> xr.DataTree:
    """ADVI of `model` on the model kernel from the constrained `starts`; `draws` draws of the best q.

    Returns a DataTree as :func:`bayes_gmm.inference._advi.fit_advi` does (``posterior`` of one chain,
    ``sample_stats`` with the ELBO per iteration, the same ``attrs``), with ``backend="kernel"``. One
    generator `rng` drives the start of every run, the minibatches and the draws, so the same seed gives
    the same fit.
    """
    covariance_type = model_structure(model)[0]
    density = ModelDensity(model, minibatch_size, rng)
    points = [to_unconstrained(start, covariance_type) for start in starts]
    best, _ = run_kernel_advi(
        density,
        points,
        method=method,
        max_iter=max_iter,
        tolerance=tolerance,
        learning_rate=learning_rate,
        rng=rng,
        progressbar=progressbar,
    )
    samples = best.approximation.sample(draws, rng)[None]
    unconstrained = xr.DataArray(
        samples,
        dims=("chain", "draw", UNCONSTRAINED_DIM),
        coords={"chain": [0], "draw": np.arange(draws)},
    )
    posterior = posterior_from_unconstrained(unconstrained, model)
    posterior.attrs = make_attrs(inference_library=bayes_gmm) | {"sample_dims": ["chain", "draw"]}
    idata = xr.DataTree()
    set_group(idata, "posterior", posterior)
    set_group(idata, "constant_data", _constant_data(model))
    record_advi_run(idata, best, tolerance=tolerance, backend="kernel")
    return idata


def _constant_data(model: pm.Model) -> xr.Dataset:
    """The model's data containers besides the observations, as PyMC's ``approx.sample`` stores them."""
    coords, dims = coords_and_dims_for_inferencedata(model)
    return dict_to_dataset(
        find_constants(model), inference_library=pm, coords=coords, dims=dims, sample_dims=[]
    )

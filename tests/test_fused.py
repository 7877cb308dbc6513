"""The fused likelihood's numba kernels (a mixture weight underflowed to exactly 0; value and gradient in one
pass) and the rewrite that puts the one-pass Op in compiled graphs."""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from pytensor.compile.mode import Mode, get_mode
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from bayes_gmm.models._fused import (
    MixtureLogp,
    MixtureLogpAndGrad,
    MixtureLogpGrad,
    cholesky_mixture_logp,
    cholesky_mixture_logp_and_grad,
    cholesky_mixture_logp_grad,
    diagonal_mixture_logp,
    diagonal_mixture_logp_and_grad,
    diagonal_mixture_logp_grad,
)
from bayes_gmm.models._fused_entry import KINDS, entry_point

WEIGHTS = np.array([0.6, 0.0, 0.4])  # the middle component's softmax weight underflowed to 0


@pytest.fixture(scope="module")
def setup():
    rng = np.random.default_rng(12)
    x = rng.normal(size=(150, 3)) * [1.0, 2.0, 0.5]
    means = rng.normal(size=(3, 3))
    chol = np.array([np.linalg.cholesky(a @ a.T + np.eye(3)) for a in rng.normal(size=(3, 3, 3))])
    sd = rng.uniform(0.5, 2.0, (3, 3))
    return x, means, chol, sd


def _scipy_log_likelihood(x, weights, means, covariances):
    log_dens = [multivariate_normal(m, c).logpdf(x) for m, c in zip(means, covariances, strict=True)]
    return float(np.sum(logsumexp(np.array(log_dens), b=weights[:, None], axis=0)))


def _central_differences(f, value, step=1e-6):
    grad = np.zeros_like(value)
    for index in np.ndindex(value.shape):
        e = np.zeros_like(value)
        e[index] = step
        grad[index] = (f(value + e) - f(value - e)) / (2 * step)
    return grad


def _check_gradients(grads, value_fn, x, means, scale, loglik):
    grad_weights, grad_means, grad_scale = grads
    for grad in grads:
        assert np.all(np.isfinite(grad))
    # The zero-weight component does not enter the likelihood: its mean and scale gradients are exactly 0.
    assert np.all(grad_means[1] == 0.0) and np.all(grad_scale[1] == 0.0)
    np.testing.assert_allclose(value_fn(WEIGHTS).sum(), loglik(WEIGHTS, means, scale), rtol=1e-12)
    # Gradients of the SciPy log-likelihood by central differences, the weights as free coordinates (only
    # the non-zero ones: a central difference at w = 0 would step to a negative weight).
    for k in (0, 2):
        e = np.zeros(3)
        e[k] = 1e-6
        expected = (loglik(WEIGHTS + e, means, scale) - loglik(WEIGHTS - e, means, scale)) / 2e-6
        assert grad_weights[k] == pytest.approx(expected, rel=1e-6)
    np.testing.assert_allclose(
        grad_means, _central_differences(lambda m: loglik(WEIGHTS, m, scale), means), rtol=1e-6, atol=1e-6
    )
    np.testing.assert_allclose(
        grad_scale, _central_differences(lambda s: loglik(WEIGHTS, means, s), scale), rtol=1e-6, atol=1e-6
    )


def test_cholesky_gradient_is_finite_and_correct_with_a_zero_weight(setup):
    x, means, chol, _ = setup
    tril = np.tril(np.ones((3, 3)))

    def loglik(w, m, c):
        c = c * tril  # only the lower triangle is a parameter
        return _scipy_log_likelihood(x, w, m, c @ np.swapaxes(c, -1, -2))

    grads = cholesky_mixture_logp_grad(x, WEIGHTS, means, chol, np.ones(len(x)))
    assert np.all(np.triu(grads[2], 1) == 0.0)
    _check_gradients(grads, lambda w: cholesky_mixture_logp(x, w, means, chol), x, means, chol, loglik)


def test_diagonal_gradient_is_finite_and_correct_with_a_zero_weight(setup):
    x, means, _, sd = setup

    def loglik(w, m, s):
        return _scipy_log_likelihood(x, w, m, np.array([np.diag(v**2) for v in s]))

    grads = diagonal_mixture_logp_grad(x, WEIGHTS, means, sd, np.ones(len(x)))
    _check_gradients(grads, lambda w: diagonal_mixture_logp(x, w, means, sd), x, means, sd, loglik)


# (structure, scale of the setup fixture): full factors (J = K), one tied factor (J = 1), standard deviations.
SCALES = {"cholesky": lambda s: s[2], "tied": lambda s: s[2][:1], "diagonal": lambda s: s[3]}


def _structure(name):
    return "diagonal" if name == "diagonal" else "cholesky"


@pytest.mark.parametrize("name", SCALES)
@pytest.mark.parametrize("g_kind", ["pointwise", "length-1"])
def test_logp_and_grad_in_one_pass_equals_the_separate_value_and_gradient(setup, name, g_kind):
    x, means = setup[0], setup[1]
    scale = SCALES[name](setup)
    weights = np.array([0.5, 0.2, 0.3])
    g = np.random.default_rng(5).normal(size=len(x)) if g_kind == "pointwise" else np.array([0.7])
    separate = {
        "cholesky": (cholesky_mixture_logp, cholesky_mixture_logp_grad, cholesky_mixture_logp_and_grad),
        "diagonal": (diagonal_mixture_logp, diagonal_mixture_logp_grad, diagonal_mixture_logp_and_grad),
    }[_structure(name)]
    entries = tuple(entry_point(_structure(name), kind) for kind in KINDS)
    for logp, grad, logp_and_grad in (separate, entries):
        expected = (logp(x, weights, means, scale), *grad(x, weights, means, scale, g))
        combined = logp_and_grad(x, weights, means, scale, g)
        assert len(combined) == 4
        for value, reference in zip(combined, expected, strict=True):
            assert value.shape == reference.shape
            np.testing.assert_allclose(value, reference, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("structure", ["cholesky", "diagonal"])
def test_logp_and_grad_entry_point_rejects_invalid_parameters(setup, structure):
    x, means, chol, sd = setup
    scale = -chol if structure == "cholesky" else -sd
    pointwise, *grads = entry_point(structure, "logp_and_grad")(
        x, np.array([0.5, 0.2, 0.3]), means, scale, np.ones(1)
    )
    assert np.all(pointwise == -np.inf)
    for grad in grads:
        assert np.all(np.isnan(grad))


def _symbolic_logp(name, setup):
    scale = SCALES[name](setup)
    inputs = [pt.matrix("x"), pt.vector("w"), pt.matrix("m"), pt.tensor(shape=(None,) * scale.ndim, name="s")]
    values = [setup[0], np.array([0.5, 0.2, 0.3]), setup[1], scale]
    return inputs, values, MixtureLogp(_structure(name))(*inputs)


def _op_names(function):
    return [type(node.op).__name__ for node in function.maker.fgraph.toposort()]


MODES = {"default": None, "numba": "NUMBA", "python": Mode(linker="py", optimizer="fast_run")}


@pytest.mark.parametrize("name", SCALES)
@pytest.mark.parametrize("mode", MODES)
def test_compiled_logp_and_gradient_run_as_one_op(setup, name, mode):
    inputs, values, logp = _symbolic_logp(name, setup)
    outputs = [logp.sum(), *pytensor.grad(logp.sum(), inputs[1:])]
    fused = pytensor.function(inputs, outputs, mode=MODES[mode])
    names = _op_names(fused)
    assert names.count(MixtureLogpAndGrad.__name__) == 1
    assert MixtureLogp.__name__ not in names and MixtureLogpGrad.__name__ not in names
    separate_mode = get_mode(MODES[mode]).excluding("fuse_mixture_logp_and_grad")
    separate = pytensor.function(inputs, outputs, mode=separate_mode)
    assert MixtureLogpAndGrad.__name__ not in _op_names(separate)
    for value, reference in zip(fused(*values), separate(*values), strict=True):
        np.testing.assert_allclose(value, reference, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("mode", ["default", "numba"])
def test_compiled_logp_alone_keeps_the_value_op(setup, mode):
    inputs, values, logp = _symbolic_logp("cholesky", setup)
    function = pytensor.function(inputs, logp.sum(), mode=MODES[mode])
    names = _op_names(function)
    assert MixtureLogp.__name__ in names
    assert MixtureLogpAndGrad.__name__ not in names and MixtureLogpGrad.__name__ not in names
    np.testing.assert_allclose(function(*values), cholesky_mixture_logp(*values).sum(), rtol=1e-12)


def test_gradient_weighted_by_the_log_likelihood_itself_is_not_fused(setup):
    # The incoming gradient of sum(logp^2) is 2 logp: one Op for both would have to take its own output.
    inputs, values, logp = _symbolic_logp("cholesky", setup)
    cost = (logp**2).sum()
    function = pytensor.function(inputs, [cost, *pytensor.grad(cost, inputs[1:])], mode="NUMBA")
    names = _op_names(function)
    assert MixtureLogpAndGrad.__name__ not in names
    value = cholesky_mixture_logp(*values)
    expected = cholesky_mixture_logp_grad(*values, 2 * value)
    for result, reference in zip(function(*values), [(value**2).sum(), *expected], strict=True):
        np.testing.assert_allclose(result, reference, rtol=1e-12)


def test_entry_points_give_minus_inf_when_every_density_underflows():
    """A point no component can reach (a scale of 1e-160) has log-likelihood -inf, never stale memory."""
    x = np.array([[1.0, 0.0], [0.0, 0.0]])
    weights, means = np.array([0.5, 0.5]), np.zeros((2, 2))
    chol = np.tile(1e-160 * np.eye(2), (2, 1, 1))
    sd = np.full((2, 2), 1e-160)
    for structure, scale in (("cholesky", chol), ("diagonal", sd)):
        logp, logp_and_grad = (entry_point(structure, kind) for kind in ("logp", "logp_and_grad"))
        for values in (
            logp(x, weights, means, scale),
            logp_and_grad(x, weights, means, scale, np.ones(1))[0],
        ):
            assert values[0] == -np.inf
            # At the mean itself the density is huge but finite: log(1 / (2 pi 1e-320)).
            np.testing.assert_allclose(values[1], -np.log(2 * np.pi) + 2 * 160 * np.log(10), rtol=1e-12)

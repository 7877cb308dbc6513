"""nutpie's compiled model: the shape-generic model kernel against the PyMC model it stands for.

The reference is the PyMC model of ``build_model`` itself, compiled by PyTensor (``model.compile_logp()``,
``model.compile_dlogp()``), with the likelihood as plain PyTensor operations (``likelihood="graph"``), so
neither the kernel nor the fused likelihood Op checks itself.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pymc as pm
import pytest
from pymc.blocking import DictToArrayBijection
from scipy import stats

from bayes_gmm.datasets import load_faithful
from bayes_gmm.inference._nutpie_compile import compile_nutpie_model, posterior_from_unconstrained
from bayes_gmm.models import GMMPriors, build_model
from bayes_gmm.models._unconstrained import from_unconstrained, to_unconstrained

_DOUBLE_P = ctypes.POINTER(ctypes.c_double)


def _logp_entry(compiled, x):
    """Call the compiled C log-density entry as nutpie does: (return code, logp, gradient)."""
    gradient, logp = np.zeros(compiled.n_dim), np.zeros(())
    code = compiled.compiled_logp_func.ctypes(
        ctypes.c_uint64(len(x)),
        np.ascontiguousarray(x, dtype=float).ctypes.data_as(_DOUBLE_P),
        gradient.ctypes.data_as(_DOUBLE_P),
        logp.ctypes.data_as(_DOUBLE_P),
        ctypes.c_void_p(compiled.user_data.ctypes.data),
    )
    return code, float(logp), gradient


def _compiled(model):
    """nutpie's compiled model of `model`, its chains started at the model's initial point."""
    start = DictToArrayBijection.map(model.initial_point()).data
    return compile_nutpie_model(model, initial_point_func=lambda seed: start)


def _expand_entry(compiled, x):
    values = np.zeros(compiled.n_expanded)
    code = compiled.compiled_expand_func.ctypes(
        ctypes.c_uint64(len(x)),
        ctypes.c_uint64(compiled.n_expanded),
        np.ascontiguousarray(x, dtype=float).ctypes.data_as(_DOUBLE_P),
        values.ctypes.data_as(_DOUBLE_P),
        ctypes.c_void_p(compiled.user_data.ctypes.data),
    )
    return code, values


@pytest.fixture(scope="module")
def faithful():
    return np.asarray(load_faithful(), dtype=float)


def _data(faithful, n_features, seed=0):
    """Old Faithful's first `n_features` columns, with columns of noise on other scales beyond two."""
    if n_features <= 2:
        return faithful[:, :n_features].copy()
    noise = np.random.default_rng(seed).normal(size=(len(faithful), n_features - 2))
    return np.column_stack([faithful, noise * np.array([3.0, 0.2])[: n_features - 2]])


# (covariance_type, K, D, weighted): every Bayesian structure, K from 1 to 4, D from 1 to 4.
CASES = [
    ("full", 2, 2, False),
    ("full", 3, 3, True),
    ("full", 1, 2, False),
    ("VVV", 4, 4, False),
    ("tied", 2, 2, True),
    ("EEE", 3, 3, False),
    ("diag", 3, 2, False),
    ("diag", 1, 1, True),
    ("spherical", 2, 3, True),
    ("EII", 3, 2, False),
    ("EEI", 2, 3, True),
    ("E", 2, 1, False),
    ("V", 3, 1, True),
]


@pytest.mark.parametrize("covariance_type, n_components, n_features, weighted", CASES)
def test_kernel_equals_the_pymc_model_log_density_and_gradient(
    faithful, covariance_type, n_components, n_features, weighted
):
    X = _data(faithful, n_features)
    rng = np.random.default_rng(n_components * 10 + n_features)
    weights = rng.uniform(0.2, 3.0, len(X)) if weighted else None
    priors = GMMPriors(weights_concentration=rng.uniform(0.5, 3.0, n_components), lkj_eta=1.5)
    options = dict(covariance_type=covariance_type, sample_weight=weights, priors=priors)
    compiled = _compiled(build_model(X, n_components, **options))
    reference = build_model(X, n_components, likelihood="graph", **options)
    logp = reference.compile_logp(mode="FAST_COMPILE")
    dlogp = reference.compile_dlogp(mode="FAST_COMPILE")
    initial = reference.initial_point()
    for scale in (0.1, 0.5, 1.0):
        point = {
            name: value + rng.normal(scale=scale, size=np.shape(value)) for name, value in initial.items()
        }
        x = DictToArrayBijection.map(point).data
        assert x.shape == (compiled.n_dim,)
        code, value, gradient = _logp_entry(compiled, x)
        assert code == 0
        assert value == pytest.approx(float(logp(point)), rel=1e-9)
        expected = dlogp(point)
        np.testing.assert_allclose(gradient, expected, rtol=1e-9, atol=1e-9 * np.max(np.abs(expected)))


def test_the_fused_likelihood_model_has_the_same_density(faithful):
    # The model nutpie stands for is the default one, whose likelihood is the fused Op.
    model = build_model(faithful, 2, covariance_type="full")
    compiled = _compiled(model)
    point = {name: value + 0.2 for name, value in model.initial_point().items()}
    code, value, gradient = _logp_entry(compiled, DictToArrayBijection.map(point).data)
    assert code == 0
    assert value == pytest.approx(float(model.compile_logp(mode="FAST_COMPILE")(point)), rel=1e-9)
    np.testing.assert_allclose(gradient, model.compile_dlogp(mode="FAST_COMPILE")(point), rtol=1e-9)


def test_entries_report_errors_with_nutpie_codes(faithful):
    compiled = _compiled(build_model(faithful, 2, covariance_type="full"))
    x = np.zeros(compiled.n_dim)
    assert _logp_entry(compiled, x)[0] == 0
    assert _logp_entry(compiled, x[:-1])[0] == -1  # wrong dimension
    huge = np.full(compiled.n_dim, 1e300)  # overflows the transforms
    assert _logp_entry(compiled, huge)[0] in (3, 4)
    nan = x.copy()
    nan[3] = np.nan
    code, value, gradient = _logp_entry(compiled, nan)
    assert code in (3, 4) and value == -np.inf and np.isnan(gradient).all()
    code, values = _expand_entry(compiled, x + 0.5)
    assert code == 0
    np.testing.assert_array_equal(values, x + 0.5)  # draws are stored unconstrained


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical", "EII", "EEI"])
def test_unconstrained_points_use_pymc_transforms_both_ways(faithful, covariance_type):
    X = _data(faithful, 3)
    model = build_model(X, 3, covariance_type=covariance_type)
    rng = np.random.default_rng(4)
    point = {
        name: value + rng.normal(scale=0.3, size=np.shape(value))
        for name, value in model.initial_point().items()
    }
    x = DictToArrayBijection.map(point).data
    # PyMC's backward transforms and the deterministic covariances, compiled by PyTensor
    outputs = [
        v
        for v in model.unobserved_value_vars
        if v.name in {"covariances", *(rv.name for rv in model.free_RVs)}
    ]
    constrained = model.compile_fn(outputs, inputs=model.value_vars, mode="FAST_COMPILE", point_fn=False)(
        *point.values()
    )
    values = from_unconstrained(x, covariance_type, 3, 3)
    assert len(outputs) == 4
    for variable, expected in zip(outputs, constrained, strict=True):
        np.testing.assert_allclose(values[variable.name], expected, rtol=1e-12, atol=1e-14)
    free = {rv.name: values[rv.name] for rv in model.free_RVs}
    np.testing.assert_allclose(to_unconstrained(free, covariance_type), x, rtol=1e-10, atol=1e-12)
    # many draws at once, as from a trace
    batch = np.stack([x, x + 0.1])[None]
    assert from_unconstrained(batch, covariance_type, 3, 3)["covariances"].shape == (1, 2, 3, 3, 3)


def test_fits_of_new_shapes_and_data_compile_nothing(faithful, count_compiles):
    from bayes_gmm.inference import fit_gmm

    options = dict(draws=30, tune=30, chains=2, random_seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit_gmm(faithful, 2, covariance_type="full", **options)  # compiles (or loads) what fits need
        with count_compiles() as records:
            fit_gmm(faithful, 3, covariance_type="full", **options)  # another K
            fit_gmm(_data(faithful, 3), 2, covariance_type="full", **options)  # another D
            fit_gmm(faithful[::2] * 3.0, 2, covariance_type="diag", **options)  # other data and type
            fit_gmm(faithful[:, :1], 2, covariance_type="V", sample_weight=np.ones(272) * 2, **options)
    assert records == []


def test_a_new_process_loads_the_kernel_and_compiles_no_model(faithful):
    _compiled(build_model(faithful, 2, covariance_type="full"))  # in the cache now
    code = textwrap.dedent(
        """
        import warnings
        import numpy as np
        from pytensor.compile import FunctionMaker
        from bayes_gmm.datasets import load_faithful
        from bayes_gmm.inference import fit_gmm
        from bayes_gmm.models._model_kernel import model_callbacks

        import subprocess

        made = []
        real, real_popen = FunctionMaker.__init__, subprocess.Popen
        FunctionMaker.__init__ = lambda self, *a, **k: made.append(1) or real(self, *a, **k)
        subprocess.Popen = lambda *a, **k: made.append(2) or real_popen(*a, **k)  # a compile in another process
        X = np.asarray(load_faithful())[:, :1]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit_gmm(X, 4, covariance_type="E", draws=20, tune=20, chains=1, random_seed=0)
        print(*(callback.cache_hits for callback in model_callbacks("E")), len(made))
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["1", "1", "0"]


def test_nutpie_draws_of_the_prior_match_pymc_prior_draws(faithful):
    """With every row's weight near zero the posterior is the prior: NUTS on the kernel must reproduce the
    prior that PyMC draws forward from the model ("full", D = 3: the simplex, log-diagonal and LKJ parts in
    distribution; the density tests above hold every structure's terms exactly)."""
    import nutpie

    X = _data(faithful, 3)
    priors = GMMPriors(variance_shape=4.0, weights_concentration=2.0)  # light tails: NUTS mixes fast
    model = build_model(X, 2, covariance_type="full", priors=priors, sample_weight=np.full(len(X), 1e-12))
    rng = np.random.default_rng(0)
    initial = DictToArrayBijection.map(model.initial_point()).data
    compiled = compile_nutpie_model(
        model, initial_point_func=lambda seed: initial + rng.normal(0, 0.1, initial.size)
    )
    fit = nutpie.sample(compiled, draws=1500, tune=500, chains=4, seed=1, progress_bar=False)
    nuts = posterior_from_unconstrained(fit.posterior["unconstrained_point"], model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prior = pm.sample_prior_predictive(
            draws=4000, model=model, var_names=["weights", "means", "covariances"], random_seed=2,
            compile_kwargs={"mode": "FAST_COMPILE"},
        ).prior  # fmt: skip

    def summaries(dataset):
        cov = dataset["covariances"].to_numpy().reshape(-1, 2, 3, 3)
        return {
            "weight": dataset["weights"].to_numpy().reshape(-1, 2)[:, 0],
            "mean": dataset["means"].to_numpy().reshape(-1, 2, 3)[:, 1, 2],
            "log sd": 0.5 * np.log(cov[:, 0, 1, 1]),
            "correlation": cov[:, 1, 0, 2] / np.sqrt(cov[:, 1, 0, 0] * cov[:, 1, 2, 2]),
        }

    drawn, expected = summaries(nuts), summaries(prior)
    for name in drawn:
        thinned = drawn[name][::5]  # nearly independent NUTS draws
        assert stats.ks_2samp(thinned, expected[name]).pvalue > 1e-3, name


def test_the_compile_counter_sees_every_kind_of_compile(count_compiles):
    import numba
    import pytensor
    import pytensor.tensor as pt

    with count_compiles() as records:
        numba.njit(lambda x: x + 1.0)(1.0)
        numba.cfunc("float64(float64)")(lambda x: x * 2.0)
        pytensor.function([], pt.constant(1.0) + 1.0, mode="FAST_COMPILE")
        subprocess.Popen([sys.executable, "-c", "pass"]).wait()  # as the model kernel's compile starts
    assert len(records) == 4 and records[2] == "pytensor function" and records[3].startswith("process")
    assert any(record.startswith("numba cfunc") for record in records)


FIRST_FIT = """
import hashlib, sys, warnings
import numpy as np
from bayes_gmm.datasets import load_faithful
from bayes_gmm.inference import fit_gmm
from bayes_gmm.models import _model_kernel as mk

if sys.argv[1] == "no-python":  # no other process can run: the kernel is compiled here
    mk._python_command = lambda *names: None
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    fit = fit_gmm(load_faithful(), 2, covariance_type="diag", draws=30, tune=30, chains=2, random_seed=3)
print(hashlib.sha256(fit.posterior["means"].to_numpy().tobytes()).hexdigest(), mk._CALLBACKS["diagonal"].cache_hits)
"""


def _first_fit(tmp_path, *arguments):
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba")}  # as after an install, then kept
    result = subprocess.run(
        [sys.executable, "-c", FIRST_FIT, *arguments], capture_output=True, text=True, timeout=600, env=env
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


@pytest.mark.slow  # two fits in new processes on empty caches: 35 s
def test_the_first_fit_after_an_install_repeats_exactly(tmp_path):
    """The kernel compiled in the first process runs as the cached code every later process loads."""
    first, second = _first_fit(tmp_path, "aside"), _first_fit(tmp_path, "aside")
    assert first[1] == "1"  # compiled in another process and loaded here, as in every later process
    assert second == first  # the same draws for the same seed


@pytest.mark.parametrize(
    ("covariance_type", "family"),
    [("full", "cholesky"), ("VVV", "cholesky"), ("tied", "cholesky"), ("EEE", "cholesky"), ("diag", "diagonal"),
     ("spherical", "diagonal"), ("EII", "diagonal"), ("EEI", "diagonal"), ("V", "diagonal"), ("E", "diagonal")],
)  # fmt: skip
def test_each_covariance_type_runs_its_familys_kernel(covariance_type, family):
    from bayes_gmm.models import _model_kernel

    assert _model_kernel.covariance_family(covariance_type) == family


def test_compiling_starts_only_for_the_families_asked_for(monkeypatch):
    from bayes_gmm.models import _model_kernel as mk

    asked = []
    monkeypatch.setattr(mk, "_load_or_start", lambda families: asked.append(families) or True)
    mk.start_compiling(["diag", "EII", "VEV"])  # VEV has no Bayesian model: the fit refuses it, not this
    mk.start_compiling(["VEV"])  # nothing to compile
    mk.start_compiling(["full", "spherical"])
    mk.start_compiling()
    assert asked == [["diagonal"], ["cholesky", "diagonal"], ["cholesky", "diagonal"]]


class _Running:
    """A compiling process that never ends."""

    killed = False
    returncode = None

    def poll(self):
        return None

    def kill(self):
        self.killed = True

    def wait(self):
        self.returncode = -9
        return self.returncode


def test_the_first_use_compiles_the_familys_kernel_first_and_the_others_after(monkeypatch):
    from bayes_gmm.models import _model_kernel as mk

    started = []
    monkeypatch.setattr(mk, "load_cached", lambda callback: False)  # as after an install
    monkeypatch.setattr(mk, "_CALLBACKS", {})
    monkeypatch.setattr(mk, "_OTHER_PROCESSES", {})
    monkeypatch.setattr(mk, "_BACKGROUND", set())
    monkeypatch.setattr(
        mk.subprocess, "Popen", lambda command, **options: started.append(command) or _Running()
    )
    assert not mk._load_or_start(["diagonal"])
    assert started[0][-1].endswith("_compile_here(['expand', 'diagonal'], ['cholesky'])")
    assert set(mk._OTHER_PROCESSES) == {"expand", "diagonal", "cholesky"} and mk._BACKGROUND == {"cholesky"}
    assert not mk._load_or_start(["diagonal"])  # compiling already: no second process
    assert len(started) == 1
    # a fit that needs the family compiled at the lower priority compiles it at the normal one, not waiting
    assert not mk._load_or_start(["cholesky"])
    assert started[1][-1].endswith("_compile_here(['cholesky'], [])") and mk._BACKGROUND == set()
    assert mk._OTHER_PROCESSES["cholesky"] is not mk._OTHER_PROCESSES["diagonal"]


class _Ended(_Running):
    """A compiling process that has ended."""

    returncode = 0

    def poll(self):
        return 0


def test_a_background_compile_taken_over_is_stopped_and_ended_processes_are_forgotten(monkeypatch):
    from bayes_gmm.models import _model_kernel as mk

    first, ended = _Running(), _Ended()
    monkeypatch.setattr(mk, "load_cached", lambda callback: False)
    monkeypatch.setattr(mk, "_CALLBACKS", {"expand": object(), "diagonal": object()})  # its fit's, loaded
    # the first process is left with only its background work; another, for an earlier fit, has ended
    monkeypatch.setattr(mk, "_OTHER_PROCESSES", {"expand": first, "diagonal": first, "cholesky": first})
    mk._OTHER_PROCESSES["old"] = ended
    monkeypatch.setattr(mk, "_BACKGROUND", {"cholesky"})
    monkeypatch.setattr(mk.subprocess, "Popen", lambda command, **options: _Running())
    assert not mk._load_or_start(["cholesky"])  # a fit needs the background family now
    assert first.killed  # not left compiling the same callback at the lower priority beside the new one
    assert "old" not in mk._OTHER_PROCESSES  # reaped and forgotten
    assert mk._OTHER_PROCESSES["cholesky"] is not first and mk._BACKGROUND == set()


def test_a_fit_waits_for_its_own_kernel_only(monkeypatch, faithful):
    """The callback is taken as soon as the other process has saved it, while it compiles another."""
    from bayes_gmm.models import _model_kernel as mk

    _compiled(build_model(faithful, 2, covariance_type="diag"))  # in the cache now
    process = _Running()
    monkeypatch.setattr(mk, "_OTHER_PROCESSES", {"diagonal": process, "cholesky": process})
    assert mk._saved_by_other_process("diagonal").cache_hits == 1
    assert not process.killed and "cholesky" in mk._OTHER_PROCESSES


def test_a_kernel_refuses_a_header_of_the_other_family(faithful):
    from types import SimpleNamespace

    full, diag = (_compiled(build_model(faithful, 2, covariance_type=name)) for name in ("full", "diag"))
    for entry, model in ((full, diag), (diag, full)):  # one family's entry, the other's model
        crossed = SimpleNamespace(
            compiled_logp_func=entry.compiled_logp_func, user_data=model.user_data, n_dim=model.n_dim
        )
        assert _logp_entry(crossed, np.zeros(model.n_dim))[0] == -1


@pytest.mark.slow
def test_the_kernel_is_compiled_here_when_no_other_process_can_run(tmp_path):
    assert _first_fit(tmp_path, "no-python")[1] == "0"


def test_no_other_process_without_a_python_to_run(monkeypatch):
    from bayes_gmm.models import _model_kernel

    command = _model_kernel._python_command()
    assert command[0] == sys.executable and "_compile_here" in command[-1]
    for executable in (None, "", "/usr/bin/uwsgi"):  # an embedding host's executable is not Python
        monkeypatch.setattr(sys, "executable", executable)
        assert _model_kernel._python_command() is None
    monkeypatch.undo()
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    assert _model_kernel._python_command() is None

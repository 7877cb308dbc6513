"""nutpie's compiled model with cached C entry points: the entries compute what PyTensor's functions compute."""

from __future__ import annotations

import ctypes
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from bayes_gmm.datasets import load_faithful
from bayes_gmm.inference._nutpie_compile import compile_nutpie_model
from bayes_gmm.models import build_model

_DOUBLE_P = ctypes.POINTER(ctypes.c_double)


def _logp_entry(compiled, x, user_data=None):
    """Call the compiled C log-density entry as nutpie does: (return code, logp, gradient)."""
    user_data = compiled.user_data if user_data is None else user_data
    gradient, logp = np.zeros(compiled.n_dim), np.zeros(())
    code = compiled.compiled_logp_func.ctypes(
        ctypes.c_uint64(len(x)),
        np.ascontiguousarray(x).ctypes.data_as(_DOUBLE_P),
        gradient.ctypes.data_as(_DOUBLE_P),
        logp.ctypes.data_as(_DOUBLE_P),
        ctypes.c_void_p(user_data.ctypes.data),
    )
    return code, float(logp), gradient


def _expand_entry(compiled, x):
    values = np.zeros(compiled.n_expanded)
    code = compiled.compiled_expand_func.ctypes(
        ctypes.c_uint64(len(x)),
        ctypes.c_uint64(compiled.n_expanded),
        np.ascontiguousarray(x).ctypes.data_as(_DOUBLE_P),
        values.ctypes.data_as(_DOUBLE_P),
        ctypes.c_void_p(compiled.user_data.ctypes.data),
    )
    return code, values


def _free_names(model):
    return [rv.name for rv in model.free_RVs]


@pytest.fixture(scope="module")
def faithful():
    return np.asarray(load_faithful(), dtype=float)


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_entries_equal_pytensor_functions_at_random_points(faithful, covariance_type):
    model = build_model(faithful, 2, covariance_type=covariance_type)
    compiled = compile_nutpie_model(model, var_names=_free_names(model))
    rng = np.random.default_rng(3)
    start = compiled.initial_point_func(0)
    for _ in range(5):
        x = start + rng.normal(scale=0.5, size=compiled.n_dim)
        code, logp, gradient = _logp_entry(compiled, x)
        reference_logp, reference_gradient = compiled.logp_func(x)
        assert code == 0
        np.testing.assert_allclose(logp, reference_logp, rtol=1e-12)
        np.testing.assert_allclose(gradient, reference_gradient, rtol=1e-10, atol=1e-10)
        code, values = _expand_entry(compiled, x)
        assert code == 0
        np.testing.assert_allclose(values, compiled.expand_func(x)[0], rtol=1e-12)


def test_entries_report_errors_with_nutpie_codes(faithful):
    model = build_model(faithful, 2, covariance_type="full")
    compiled = compile_nutpie_model(model, var_names=_free_names(model))
    x = compiled.initial_point_func(0)
    code, _, _ = _logp_entry(compiled, x[:-1])
    assert code == -1  # wrong dimension
    huge = x.copy()
    huge[:] = 1e300  # overflows the transforms: a non-finite log density or gradient
    code, _, _ = _logp_entry(compiled, huge)
    assert code in (3, 4)


def test_new_data_swapped_in_give_the_log_density_of_the_new_model(faithful):
    model = build_model(faithful, 2, covariance_type="full")
    compiled = compile_nutpie_model(model, var_names=_free_names(model))
    other_data = faithful[::2] * np.array([1.5, 0.5])
    other_model = build_model(other_data, 2, covariance_type="full")
    swapped = compiled.with_data(**{var.name: var.get_value() for var in other_model.data_vars})
    reference = compile_nutpie_model(other_model, var_names=_free_names(other_model))
    x = reference.initial_point_func(0) + 0.1
    code, logp, gradient = _logp_entry(swapped, x, swapped.user_data)
    reference_logp, reference_gradient = reference.logp_func(x)
    assert code == 0
    np.testing.assert_allclose(logp, reference_logp, rtol=1e-12)
    np.testing.assert_allclose(gradient, reference_gradient, rtol=1e-10, atol=1e-10)
    assert abs(logp - _logp_entry(compiled, x)[1]) > 1.0  # the data did change the density


def test_a_later_process_loads_the_entries_from_the_cache(faithful):
    # The tests above compiled (and cached) the full-covariance entries for these shapes in this process.
    model = build_model(faithful, 2, covariance_type="full")
    compile_nutpie_model(model, var_names=_free_names(model))
    code = textwrap.dedent(
        """
        import numpy as np
        from bayes_gmm.datasets import load_faithful
        from bayes_gmm.inference._nutpie_compile import compile_nutpie_model
        from bayes_gmm.models import build_model

        model = build_model(np.asarray(load_faithful(), dtype=float), 2, covariance_type="full")
        compiled = compile_nutpie_model(model, var_names=[rv.name for rv in model.free_RVs])
        print(compiled.compiled_logp_func.cache_hits, compiled.compiled_expand_func.cache_hits)
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["1", "1"]


def test_an_entry_whose_cached_code_does_not_load_is_compiled_and_cached_anew(faithful):
    # PyTensor's cache outlives installs: an entry written by other code may fail to load (here: truncated).
    from pytensor.link.numba.cache import NUMBA_CACHE_PATH

    model = build_model(faithful, 2, covariance_type="full")
    compiled = compile_nutpie_model(model, var_names=_free_names(model))
    key = _cache_key(compiled.compiled_logp_func)
    data_files = list(NUMBA_CACHE_PATH.glob(f"*{key}*.nbc"))
    assert data_files
    for path in data_files:
        path.write_bytes(path.read_bytes()[:100])

    recompiled = compile_nutpie_model(model, var_names=_free_names(model))
    assert recompiled.compiled_logp_func.cache_hits == 0
    x = recompiled.initial_point_func(0) + 0.1
    code, logp, _ = _logp_entry(recompiled, x)
    assert code == 0
    np.testing.assert_allclose(logp, recompiled.logp_func(x)[0], rtol=1e-12)
    # ... and saved again: the next compile loads it.
    assert compile_nutpie_model(model, var_names=_free_names(model)).compiled_logp_func.cache_hits == 1


def test_a_callback_that_does_not_compile_raises_the_compile_error_once():
    import numba
    from numba.core.errors import TypingError

    from bayes_gmm.inference._nutpie_compile import _compiled_callback

    def broken(x):
        return undefined_name + x  # noqa: F821

    with pytest.raises(TypingError) as raised:
        _compiled_callback(broken, numba.types.float64(numba.types.float64), cached=False)
    assert raised.value.__context__ is None


def _cache_key(callback):
    from pytensor.link.numba.cache import CACHED_SRC_FUNCTIONS

    return CACHED_SRC_FUNCTIONS[callback.__wrapped__]

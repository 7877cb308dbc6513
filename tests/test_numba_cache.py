"""numba's on-disk cache as the package uses it: no stale kernels after an edit (or an upgrade), none swapped.

Each scenario runs fresh Python processes over modules written to a temporary directory, as an upgrade does:
the sources change, the ``__pycache__`` beside them stays.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import bayes_gmm
from bayes_gmm._numba_cache import KERNEL_MODULES, KERNEL_SOURCES_DIGEST, sources_digest

PACKAGE_ROOT = Path(bayes_gmm.__file__).parent
#: numba caches beside the sources (as for an installed package), not in a directory the user chose.
_ENVIRONMENT = {key: value for key, value in os.environ.items() if key != "NUMBA_CACHE_DIR"}


def _run(directory: Path, code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=120,
        env={**_ENVIRONMENT, "PYTHONPATH": str(directory)},
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def _write(path: Path, source: str) -> None:
    path.write_text(textwrap.dedent(source))


CALLEE = """
import numba

@numba.njit(cache=True)
def increment():
    return {value}
"""

CALLER = """
from pathlib import Path

from bayes_gmm._numba_cache import kernel_cfunc, kernel_njit
from callee import increment

SOURCES = [Path(__file__).with_name("callee.py"), Path(__file__)]

@kernel_njit(sources=SOURCES)
def add_increment(x):
    return x + increment()

@kernel_cfunc("int64(int64)", sources=SOURCES)
def add_increment_c(x):
    return x + increment()
"""

REPORT = "import caller; print(caller.add_increment(10), caller.add_increment_c.ctypes(10))"


def test_an_edit_of_a_callee_in_another_file_invalidates_the_caller_cache(tmp_path):
    # numba alone keys the caller's cache by the caller's file: it would still print 11 after the edit.
    _write(tmp_path / "callee.py", CALLEE.format(value=1))
    _write(tmp_path / "caller.py", CALLER)
    assert _run(tmp_path, REPORT) == "11 11"
    assert any(tmp_path.joinpath("__pycache__").glob("caller.add_increment*.nbi"))  # the cache was written

    _write(tmp_path / "callee.py", CALLEE.format(value=2))
    assert _run(tmp_path, REPORT) == "12 12"


def test_the_cache_is_reused_while_the_sources_are_unchanged(tmp_path):
    _write(tmp_path / "callee.py", CALLEE.format(value=1))
    _write(tmp_path / "caller.py", CALLER)
    stats = (
        "import caller; caller.add_increment(1);"
        "print(sum(caller.add_increment.stats.cache_hits.values()), caller.add_increment_c.cache_hits)"
    )
    assert _run(tmp_path, stats) == "0 0"
    assert _run(tmp_path, stats) == "1 1"


def test_dispatchers_of_one_function_with_different_options_do_not_share_cached_code(tmp_path):
    # numba's own key leaves the options out: the parallel dispatcher would load the serial code.
    _write(
        tmp_path / "twins.py",
        """
        import numba
        from pathlib import Path

        from bayes_gmm._numba_cache import kernel_njit

        def total(x):
            s = 0.0
            for i in numba.prange(x.shape[0]):
                s += x[i]
            return s

        serial = kernel_njit(sources=[Path(__file__)])(total)
        parallel = kernel_njit(sources=[Path(__file__)], parallel=True)(total)
        """,
    )
    run_serial = "import numpy as np, twins; print(twins.serial(np.ones(8)))"
    assert _run(tmp_path, run_serial) == "8.0"
    run_parallel = (
        "import numpy as np, twins; value = twins.parallel(np.ones(8));"
        "print(value, sum(twins.parallel.stats.cache_hits.values()))"
    )
    assert _run(tmp_path, run_parallel) == "8.0 0"
    assert _run(tmp_path, run_parallel) == "8.0 1"


def test_options_given_as_sets_key_the_cache_the_same_way_in_every_process(tmp_path):
    # fastmath flags are a set, whose order changes with each process's string hashing.
    _write(
        tmp_path / "flags.py",
        """
        from pathlib import Path

        from bayes_gmm._numba_cache import kernel_njit

        @kernel_njit(sources=[Path(__file__)], fastmath={"nsz", "arcp", "contract", "afn", "reassoc"})
        def scaled(x):
            return 2.0 * x
        """,
    )
    code = "import flags; flags.scaled(1.0); print(sum(flags.scaled.stats.cache_hits.values()))"
    assert _run(tmp_path, code) == "0"
    assert [_run(tmp_path, code) for _ in range(2)] == ["1", "1"]


#: Modules that compile with numba directly, and why their caches cannot go stale.
_OWN_CACHE_KEYS = {
    "_numba_cache.py": "the stamped cache itself",
    # Cached in PyTensor's cache under a key that hashes the callbacks' source, this module, and PyTensor's
    # keys of the functions they call.
    "inference/_nutpie_compile.py": "keyed by everything its callbacks depend on",
}


def test_every_numba_function_of_the_package_uses_the_stamped_cache():
    decorator = re.compile(r"\bnumba\.(njit|jit|cfunc|vectorize|guvectorize)\(|cache\s*=\s*True")
    stamped = re.compile(r"\bkernel_(njit|cfunc)\(")
    users = set()
    for path in PACKAGE_ROOT.rglob("*.py"):
        relative = path.relative_to(PACKAGE_ROOT).as_posix()
        if relative in _OWN_CACHE_KEYS:
            continue
        source = path.read_text()
        assert not decorator.search(source), f"{relative} compiles with numba's own cache; use kernel_njit"
        if stamped.search(source):
            users.add(relative)
    assert users == set(KERNEL_MODULES)


def test_the_digest_covers_every_kernel_module_and_changes_with_any_byte(tmp_path):
    # The kernel modules and the module that stamps their caches.
    modules = [PACKAGE_ROOT / module for module in KERNEL_MODULES] + [PACKAGE_ROOT / "_numba_cache.py"]
    assert KERNEL_SOURCES_DIGEST == sources_digest(modules)
    first, second = tmp_path / "first.py", tmp_path / "second.py"
    first.write_text("a = 1\n")
    second.write_text("b = 2\n")
    digest = sources_digest([first, second])
    second.write_text("b = 3\n")
    assert sources_digest([first, second]) != digest
    # Text moved from one file to the next is a change too.
    first.write_text("a = 1\nb")
    second.write_text(" = 2\n")
    assert sources_digest([first, second]) != digest


@pytest.mark.parametrize("module", KERNEL_MODULES)
def test_kernel_modules_exist(module):
    assert (PACKAGE_ROOT / module).is_file()


def test_a_module_moved_with_the_same_text_changes_the_digest(tmp_path):
    # As em_baseline/_kernels.py moved to covariance/_kernels.py: same name, same text, another package.
    old, new = tmp_path / "em_baseline" / "_kernels.py", tmp_path / "covariance" / "_kernels.py"
    for path in (old, new):
        path.parent.mkdir()
        path.write_text("x = 1\n")
    assert sources_digest([old]) != sources_digest([new])


def test_an_option_without_a_stable_text_is_refused():
    from bayes_gmm._numba_cache import _canonical

    assert _canonical({"fastmath": {"b", "a"}, "locals": ("x", 1)}) == _canonical(
        {"locals": ("x", 1), "fastmath": {"a", "b"}}
    )
    with pytest.raises(TypeError, match="same in every process"):
        _canonical({"option": object()})

"""numba's on-disk cache, made safe for kernels that call each other across files.

numba keys a cached function by its own source file only: a jitted caller whose callee lives in another
file keeps loading its cached code (with the old callee compiled into it) after the callee changed. That is
numba's documented limitation (numba/numba#1833), and it bites a package on every upgrade, because pip
replaces the sources but leaves numba's ``__pycache__`` files beside them: a cache written by an older
release either runs the old kernels silently or fails to load (a module the old code imported is gone).
numba also leaves a function's compile options out of the key, so two dispatchers made from one Python
function (the parallel and the serial E-step) share, and so swap, their cached code.

:func:`kernel_njit` and :func:`kernel_cfunc` are ``numba.njit(cache=True)`` and
``numba.cfunc(cache=True)`` with both fixed: the cache is stamped with a digest of every kernel source file
of the package (:data:`KERNEL_MODULES`), so an edit of any of them invalidates all of them, and the key of
each compiled version includes the compile options. Every numba function of the package is made with one of
the two (a test checks it).
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterable
from pathlib import Path

import numba
from numba.core.caching import FunctionCache, IndexDataCacheFile, NullCache
from numba.core.ccallback import CFunc
from numba.core.errors import NumbaError
from numba.core.sigutils import normalize_signature

_PACKAGE_ROOT = Path(__file__).resolve().parent

#: The package's modules with numba functions, relative to the package root. Their digest stamps the cache.
KERNEL_MODULES = (
    "covariance/_kernels.py",
    "em_baseline/_dask.py",
    "em_baseline/_hc.py",
    "models/_fused_entry.py",
    "models/_fused_kernels.py",
    "models/_model_kernel.py",
)


def sources_digest(paths: Iterable[str | Path]) -> str:
    """SHA-256 (hex) of the files' places and contents, in the order given, each prefixed by its length.

    The place counts too (the path inside the package, or the absolute path of a file outside it): compiled
    code refers to modules by name, so a module moved with the same text must not find the code cached for
    its old place.
    """
    digest = hashlib.sha256()
    for path in paths:
        path = Path(path).resolve()
        place = path.relative_to(_PACKAGE_ROOT) if path.is_relative_to(_PACKAGE_ROOT) else path
        for part in (place.as_posix().encode(), path.read_bytes()):
            digest.update(len(part).to_bytes(8, "big"))
            digest.update(part)
    return digest.hexdigest()


#: Digest of the kernel sources: the stamp of every cached numba function of the package, and part of the
#: key under which PyTensor caches the model graphs that call them.
KERNEL_SOURCES_DIGEST = sources_digest(
    [*(_PACKAGE_ROOT / module for module in KERNEL_MODULES), Path(__file__)]
)


def _canonical(value) -> str:
    """A text of `value` that is the same in every process (a set's order depends on string hashing)."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key!r}: {_canonical(item)}" for key, item in sorted(value.items())) + "}"
    if isinstance(value, set | frozenset):
        return "{" + ", ".join(sorted(_canonical(item) for item in value)) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_canonical(item) for item in value) + "]"
    if isinstance(value, bool | int | float | str | None):
        return repr(value)
    raise TypeError(f"kernel_njit option value {value!r} has no text that is the same in every process")


class _StampedFunctionCache(FunctionCache):
    """numba's function cache, stamped by `stamp` besides the function's own file, keyed by `options` too."""

    def __init__(self, py_func, *, stamp: str, options: dict):
        super().__init__(py_func)
        self._options_key = _canonical(options)
        # A stamp that differs from the one stored discards the whole index (numba's own behaviour for an
        # edited source file), so the entries of older kernels do not accumulate.
        # Dispatchers of one function with different options get index files of their own: two processes
        # saving to one index at once could each number its code file 1 and so swap them.
        options_hash = hashlib.sha256(self._options_key.encode()).hexdigest()[:8]
        self._cache_file = IndexDataCacheFile(
            cache_path=self._cache_path,
            filename_base=f"{self._impl.filename_base}-{options_hash}",
            source_stamp=(self._impl.locator.get_source_stamp(), stamp),
        )

    def _index_key(self, sig, codegen):
        return (*super()._index_key(sig, codegen), self._options_key)

    def _save_overload(self, sig, data):
        # numba reads the index, picks the first free data file number and writes both with no lock: two
        # processes saving different versions of one function at once (the model kernel's compile beside an
        # EM fit's) could each take number 1, and one would then load the other's code.
        with _locked(Path(self._cache_path) / f"{self._cache_file._index_name}.lock"):
            super()._save_overload(sig, data)


@contextlib.contextmanager
def _locked(path: Path):
    """An exclusive lock on the file `path` across processes (POSIX ``flock``; elsewhere no lock)."""
    try:
        import fcntl
    except ImportError:  # Windows
        yield
        return
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def kernel_njit(*, sources: Iterable[str | Path] | None = None, **options):
    """``numba.njit(cache=True, **options)`` whose cache an edit of any of `sources` invalidates.

    Parameters
    ----------
    sources : iterable of path, optional
        The files the function's compiled code depends on (its own and its jitted callees'). Default: the
        package's :data:`KERNEL_MODULES`.
    **options
        numba.njit's options (``parallel``, ``fastmath``, ``nogil``, ...); they are part of the cache key.
    """
    stamp = KERNEL_SOURCES_DIGEST if sources is None else sources_digest(sources)

    def decorate(py_func):
        dispatcher = numba.njit(**options)(py_func)
        # What Dispatcher.enable_caching does, with the stamped cache in place of numba's FunctionCache.
        dispatcher._cache = _StampedFunctionCache(py_func, stamp=stamp, options=options)
        return dispatcher

    return decorate


def kernel_cfunc(signature, *, sources: Iterable[str | Path] | None = None, **options):
    """``numba.cfunc(signature, cache=True, **options)`` with the cache of :func:`kernel_njit`."""

    def decorate(py_func):
        return compile_callback(uncompiled_kernel_cfunc(py_func, signature, sources=sources, **options))

    return decorate


def uncompiled_kernel_cfunc(
    py_func, signature, *, sources: Iterable[str | Path] | None = None, **options
) -> CFunc:
    """What :func:`kernel_cfunc` makes of `py_func`, before it is compiled or loaded from the cache.

    :func:`compile_callback` loads it from the cache or compiles it; :func:`load_cached` only loads it.
    """
    stamp = KERNEL_SOURCES_DIGEST if sources is None else sources_digest(sources)
    # What numba.cfunc(cache=True) does, with the stamped cache in place of numba's FunctionCache.
    callback = CFunc(py_func, normalize_signature(signature), locals={}, options=options)
    callback._cache = _StampedFunctionCache(py_func, stamp=stamp, options=options)
    return callback


def compile_callback(callback: CFunc) -> CFunc:
    """``callback.compile()`` (load from the cache, or compile and save), surviving a cached entry that fails.

    A cache outlives installs and interrupted processes, so an entry may have been written by code that no
    longer exists, or only in part. Such an entry is dropped and the callback compiled anew (the next
    process loads the new one); if the cache cannot be used at all, the callback is compiled for this
    process only. A compile error is raised as it is.
    """
    remedies = [lambda: callback._cache.flush(), lambda: setattr(callback, "_cache", NullCache())]
    while True:
        try:
            callback.compile()
            return callback
        except NumbaError:  # the code itself does not compile: no cache can help
            raise
        except Exception:  # loading the cached entry failed
            if isinstance(callback._cache, NullCache) or not remedies:
                raise
            remedies.pop(0)()


class _NotCached(Exception):
    pass


def _refuse_to_compile():
    raise _NotCached


def load_cached(callback: CFunc) -> bool:
    """Load the compiled code of `callback` from its cache, as ``callback.compile()`` does on a hit.

    Returns False, having compiled nothing, when the cache holds no code for it or none that loads.
    """
    callback._compile_uncached = _refuse_to_compile  # what CFunc.compile runs on a cache miss
    try:
        callback.compile()
    except Exception:  # _NotCached, or an entry that fails to load (compile_callback replaces it)
        return False
    finally:
        del callback._compile_uncached
    return True

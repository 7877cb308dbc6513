"""File output that is never left half-written, with the permissions the user's umask asks for.

A single file is written to a temporary file beside the target, then renamed onto it
(:func:`atomic_path`). A whole folder of results is written to a hidden sibling folder, then swapped in
for the target folder (:func:`replace_directory`), so that a folder never holds files of two runs. The
writing run holds a lock on its hidden folder, so that those of a killed run can be told from a running
one's and cleaned up (:func:`remove_stale_stages`).
Temporary files and folders are created private (0600, 0700); what is renamed into place gets the mode
an ordinary ``open``/``mkdir`` would have given it: 0666 or 0777 less the umask.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import shutil
import socket
import tempfile
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

#: The file in a staging folder whose flock the writing run holds.
LOCK_NAME = "lock"
#: Where a swap moves the folder it replaces, inside the staging folder.
OLD_NAME = "old"
#: The name of a staging folder (:func:`_stage_prefix`, then :func:`tempfile.mkdtemp`'s letters).
_STAGE_NAME = re.compile(r"\..+\.partial-[0-9a-f]{8}-\d+-[^/\\]+")


def current_umask() -> int:
    """The process's umask, read without changing it where the system allows (Linux ``/proc``)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # elsewhere: set and restore (not thread-safe, but brief)
    os.umask(mask)
    return mask


def apply_umask(path) -> None:
    """Give `path` (a file, or a folder and everything in it) the modes the umask asks for."""
    mask = current_umask()
    path = Path(path)
    if not path.is_dir():
        os.chmod(path, 0o666 & ~mask)
        return
    for folder, _, files in os.walk(path):
        os.chmod(folder, 0o777 & ~mask)
        for name in files:
            os.chmod(os.path.join(folder, name), 0o666 & ~mask)


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path in the target's directory; on success, rename it onto `path`.

    If the body raises, the temporary file is removed and `path` is left as it was. The file gets the
    mode the umask asks for (not the temporary file's 0600). Missing parent folders are created, except a
    staging folder of :func:`replace_directory`: one that is gone was removed by another process, and
    writing into a new one would swap incomplete results in, so that is an error.
    """
    path = Path(path)
    _make_parents(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        apply_umask(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _make_parents(folder: Path) -> None:
    missing = folder
    while not missing.exists():
        if _STAGE_NAME.fullmatch(missing.name):
            raise FileNotFoundError(
                errno.ENOENT,
                "the staging folder of this run was removed by another process; nothing was written"
                " (run it again)",
                str(missing),
            )
        missing = missing.parent
    folder.mkdir(parents=True, exist_ok=True)


def write_text_atomic(path, text: str) -> None:
    """Write `text` to `path` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


@contextlib.contextmanager
def replace_directory(path, *, before_swap=None):
    """Yield a new, empty hidden folder beside `path`; on success it replaces `path` as a whole.

    Everything written into the yielded folder appears at `path` together, with umask modes; whatever
    `path` held before is removed. If the body raises (or is interrupted), the new folder is deleted and
    `path` is left exactly as it was; parent folders created for it are removed again. `before_swap`, if
    given, is called with the new folder just before the swap and may raise to cancel it.

    The yielded folder lies in a staging folder (:class:`_Stage`) whose lock the run holds throughout, so
    that :func:`remove_stale_stages` of another run leaves it alone. The swap is two renames in the same
    parent folder (the old folder into the staging folder, the new one in its place), so for an instant
    `path` does not exist; it is never half-written.
    """
    path = Path(path)
    missing = []
    parent = path.parent
    while not parent.exists():
        missing.append(parent)
        parent = parent.parent
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        stage = _Stage.create(path)
    except BaseException:
        _remove_empty(missing)
        raise
    swapped = False
    try:
        yield stage.results
        apply_umask(stage.results)
        if before_swap is not None:
            before_swap(stage.results)
        stage.swap_into(path)
        swapped = True
    finally:
        stage.remove()
        if not swapped:
            _remove_empty(missing)


class _Stage:
    """A run's hidden staging folder beside its target: ``results`` (written, then swapped in) and a lock.

    The writer holds an ``fcntl.flock`` on the folder's ``lock`` file from creation to removal; a flock is
    held by an open file description, whatever PID namespace or container its process runs in, and the
    kernel drops it when the process dies (even by SIGKILL). A cleaner that can take the lock knows the
    writer is gone. Where there is no fcntl (Windows) the folder's name, host and PID, is all there is.
    """

    def __init__(self, folder: Path, lock_fd: int):
        self.folder = folder
        self.results = folder / "results"
        self._fd = lock_fd
        self._identity = _identity(os.stat(folder))

    @classmethod
    def create(cls, path: Path) -> _Stage:
        for _ in range(3):  # a cleaner may remove a new folder in the instant before its lock is taken
            folder = Path(tempfile.mkdtemp(dir=path.parent, prefix=_stage_prefix(path)))
            try:
                fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
            except FileNotFoundError:
                continue
            try:
                if fcntl is not None:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                stage = cls(folder, fd)
                if stage.intact():
                    stage.results.mkdir()
                    return stage
            except (FileNotFoundError, BlockingIOError):
                pass
            except BaseException:
                os.close(fd)
                shutil.rmtree(folder, ignore_errors=True)
                raise
            os.close(fd)
        raise FileNotFoundError(
            errno.ENOENT, "another process keeps removing the staging folders made here", str(path.parent)
        )

    def intact(self) -> bool:
        """Whether the folder and its lock file are still the ones this run made (no cleaner removed them)."""
        try:
            same_folder = _identity(os.stat(self.folder)) == self._identity
            return same_folder and _identity(os.stat(self.folder / LOCK_NAME)) == _identity(
                os.fstat(self._fd)
            )
        except FileNotFoundError:
            return False

    def swap_into(self, path: Path) -> None:
        if not self.intact() or not self.results.is_dir():
            raise FileNotFoundError(
                errno.ENOENT,
                "the staging folder of this run was removed or replaced by another process before the swap; "
                f"nothing was written and {path} is as it was (run it again)",
                str(self.folder),
            )
        if not path.is_dir() or not any(path.iterdir()):
            os.replace(self.results, path)  # creates `path`, or replaces an empty folder
            return
        old = self.folder / OLD_NAME
        os.replace(path, old)
        try:
            os.replace(self.results, path)
        except BaseException:
            os.replace(old, path)
            raise

    def remove(self) -> None:
        """Delete the folder (what is left: the old results, or the unswapped ones), then drop the lock."""
        try:
            if self.intact():
                shutil.rmtree(self.folder, ignore_errors=True)
        finally:
            os.close(self._fd)


def _identity(status: os.stat_result) -> tuple[int, int]:
    return status.st_dev, status.st_ino


def _remove_empty(folders) -> None:
    for folder in folders:  # deepest first
        with contextlib.suppress(OSError):
            folder.rmdir()


def remove_stale_stages(path) -> list[Path]:
    """Clean up after runs into `path` that were killed: their staging folders beside it; returns those removed.

    Only folders whose writer has gone: a run in progress holds its folder's lock (see :class:`_Stage`),
    and the folders of other hosts (named in the folder's name; a network file system may not share
    locks) are kept. If `path` is missing, the earlier results a killed swap had moved into the staging
    folder go back to `path`; the rest is deleted. Without fcntl (Windows) no writer is judged gone.
    """
    path = Path(path)
    if not path.parent.is_dir():
        return []
    pattern = re.compile(rf"\.{re.escape(path.name)}\.partial-([0-9a-f]{{8}})-(\d+)-[^/\\]+")
    handled = []
    for entry in sorted(path.parent.iterdir(), key=lambda e: e.name):
        match = pattern.fullmatch(entry.name)
        if match is None or entry.is_symlink() or not entry.is_dir() or match.group(1) != _host_tag():
            continue
        with _writer_gone(entry, int(match.group(2))) as gone:
            if not gone:
                continue
            old = entry / OLD_NAME
            if old.is_dir() and not os.path.lexists(path):
                with contextlib.suppress(OSError):
                    os.replace(old, path)
            shutil.rmtree(entry, ignore_errors=True)
        handled.append(entry)
    return handled


@contextlib.contextmanager
def _writer_gone(folder: Path, pid: int):
    """Yield whether the staging folder's writer has gone, holding its lock meanwhile if it has."""
    if fcntl is None:
        yield not _process_alive(pid)
        return
    try:
        fd = os.open(folder / LOCK_NAME, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:  # a writer takes its lock as it makes the folder, and checks it did
        yield True
        return
    except OSError:  # another user's: keep it
        yield False
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
        else:
            yield True
    finally:
        os.close(fd)


def is_mount_point(path) -> bool:
    """Whether `path` is a mount point, a bind mount within one file system included.

    :func:`os.path.ismount` compares devices, which such a bind mount shares with its parent folder; on
    Linux the kernel's list of mount points (``/proc/self/mountinfo``) is read too.
    """
    if os.path.ismount(path):
        return True
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as file:
            text = file.read()
    except OSError:
        return False
    return os.path.realpath(path) in mount_points(text)


def mount_points(mountinfo: str) -> set[str]:
    """The mount points of a ``/proc/self/mountinfo`` text: each line's field 5, octal escapes decoded.

    The kernel writes a space, tab, newline or backslash in a path as ``\\040``, ``\\011``, ``\\012``,
    ``\\134``.
    """
    points = set()
    for line in mountinfo.splitlines():
        fields = line.split(" ")
        if len(fields) > 4:
            points.add(re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[4]))
    return points


def _stage_prefix(path: Path) -> str:
    return f".{path.name}.partial-{_host_tag()}-{os.getpid()}-"


def _host_tag() -> str:
    """Eight hex digits naming this host (folders on a shared disk may come from processes elsewhere)."""
    return hashlib.sha1(socket.gethostname().encode("utf-8")).hexdigest()[:8]


def _process_alive(pid: int) -> bool:
    if pid == os.getpid() or os.name != "posix":
        return True  # Windows' os.kill would end the process, not probe it: keep its folders
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: another user's process
        return True
    return True

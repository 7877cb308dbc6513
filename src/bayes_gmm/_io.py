"""File output that is never left half-written, with the permissions the user's umask asks for.

A single file is written to a temporary file beside the target, then renamed onto it
(:func:`atomic_path`). A whole folder of results is written to a hidden sibling folder, then swapped in
for the target folder (:func:`replace_directory`), so that a folder never holds files of two runs. The
hidden folders' names carry the writing process's host and PID, so that those of a killed run can be told
from a running one's and cleaned up (:func:`remove_stale_stages`).
Temporary files and folders are created private (0600, 0700); what is renamed into place gets the mode
an ordinary ``open``/``mkdir`` would have given it: 0666 or 0777 less the umask.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import socket
import tempfile
from pathlib import Path


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
    mode the umask asks for (not the temporary file's 0600).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
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

    The swap is two renames in the same parent folder (the old folder aside, the new one in), so for an
    instant `path` does not exist; it is never half-written.
    """
    path = Path(path)
    missing = []
    parent = path.parent
    while not parent.exists():
        missing.append(parent)
        parent = parent.parent
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        stage = Path(tempfile.mkdtemp(dir=path.parent, prefix=_stage_prefix(path, "partial")))
    except BaseException:
        _remove_empty(missing)
        raise
    try:
        yield stage
        apply_umask(stage)
        if before_swap is not None:
            before_swap(stage)
        _swap(stage, path)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        _remove_empty(missing)
        raise


def _swap(stage: Path, path: Path) -> None:
    if not path.is_dir() or not any(path.iterdir()):
        os.replace(stage, path)  # creates `path`, or replaces an empty folder
        return
    old = Path(tempfile.mkdtemp(dir=path.parent, prefix=_stage_prefix(path, "old")))
    try:
        os.replace(path, old)  # onto the empty folder just made
    except BaseException:
        old.rmdir()
        raise
    try:
        os.replace(stage, path)
    except BaseException:
        os.replace(old, path)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _remove_empty(folders) -> None:
    for folder in folders:  # deepest first
        with contextlib.suppress(OSError):
            folder.rmdir()


def remove_stale_stages(path) -> list[Path]:
    """Clean up after runs into `path` that were killed: their hidden folders beside it; returns those handled.

    Only folders whose writer, named in the folder's name, is a process of this host that no longer runs:
    a run in progress keeps its own. A killed run's new results (``.NAME.partial-*``) are deleted; its
    earlier results (``.NAME.old-*``, moved aside by a swap the kill interrupted) go back to `path` if
    `path` is missing, and are deleted otherwise. Elsewhere than POSIX no process is judged gone.
    """
    path = Path(path)
    if not path.parent.is_dir():
        return []
    pattern = re.compile(rf"\.{re.escape(path.name)}\.(partial|old)-([0-9a-f]{{8}})-(\d+)-[^/\\]+")
    handled = []
    for entry in sorted(path.parent.iterdir(), key=lambda e: e.name):  # "old" before "partial"
        match = pattern.fullmatch(entry.name)
        if match is None or entry.is_symlink() or not entry.is_dir():
            continue
        kind, host, pid = match.group(1), match.group(2), int(match.group(3))
        if host != _host_tag() or _process_alive(pid):
            continue
        if kind == "old" and not os.path.lexists(path):
            with contextlib.suppress(OSError):
                os.replace(entry, path)
        else:
            shutil.rmtree(entry, ignore_errors=True)
        handled.append(entry)
    return handled


def _stage_prefix(path: Path, kind: str) -> str:
    return f".{path.name}.{kind}-{_host_tag()}-{os.getpid()}-"


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

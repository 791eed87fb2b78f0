"""Files the run writes: replaced atomically, or appended to.

Owner of: how a file the run leaves behind is written (the JSON report, the
alert ledger, the simulated processes' saved state and ready files); owner:
used by every layer. A reader (a CI step, the next run, a test waiting for a
ready file) sees either the old content or the new one, never a partial file,
and a failed write leaves no temporary file behind.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path
from typing import Final

from .exceptions import ConfigError

__all__ = ["append_text", "check_writable", "same_file", "write_atomic"]

_DEFAULT_UMASK: Final = 0o022


def write_atomic(path: str | os.PathLike[str], data: bytes | str) -> Path:
    """Replace ``path`` with ``data`` (``str`` as UTF-8) in one step; return the path.

    Parent directories are created. The data goes to a unique temporary file
    in the same directory (``os.replace`` is atomic only within a file system),
    is flushed and fsync'd, then renamed over ``path``. The file gets the mode
    an ordinary write would give it: the old file's, or the umask's.
    """
    target = Path(path)
    # Encoding first: a str that cannot be encoded fails before anything is touched.
    payload = data.encode("utf-8") if isinstance(data, str) else data
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            # mkstemp makes the file 0600, which would hide a report from other readers.
            os.fchmod(f.fileno(), _mode(target))
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    return target


def append_text(path: str | os.PathLike[str], text: str) -> None:
    """Append ``text`` as UTF-8 to ``path`` (``$GITHUB_STEP_SUMMARY``), creating it if needed."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("a", encoding="utf-8") as f:
        f.write(text)


def check_writable(path: str | os.PathLike[str], what: str) -> Path:
    """``path`` resolved, if the run will be able to write it there; else ConfigError.

    The one rule for every file a user names (``--live-report``,
    ``--live-record``, ``--live-alert-ledger``), checked before any test runs
    rather than found after all of them: the path must not be a directory, its
    nearest existing ancestor must be a directory, and a file must be creatable
    in it (tried with a temporary file, removed at once). Nothing else is left
    behind: missing parent directories are created only when the file is written.
    """
    target = Path(path)

    def refuse(why: str) -> ConfigError:
        return ConfigError(f"{what}: cannot write {str(path)!r}: {why}")

    if target.is_dir():
        raise refuse("it is a directory")
    if target.exists() and not target.is_file():
        raise refuse("it is not a regular file")
    parent = target.absolute().parent
    while not parent.exists() and not parent.is_symlink():
        parent = parent.parent
    if not parent.is_dir():
        raise refuse(f"{str(parent)!r} is not a directory")
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=parent)
    except OSError as exc:
        raise refuse(f"cannot create a file in {str(parent)!r}: {exc.strerror or exc}") from exc
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(probe)
    if target.exists() and not os.access(target, os.W_OK):
        raise refuse("permission denied")
    return target.resolve()


def same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """Whether two paths name one file: symlinks, ``./x`` and absolute forms, hard links."""
    with contextlib.suppress(OSError):
        if os.path.samefile(a, b):
            return True
    return os.path.realpath(a) == os.path.realpath(b)


def _mode(target: Path) -> int:
    with contextlib.suppress(OSError):
        return stat.S_IMODE(target.stat().st_mode)
    return 0o666 & ~_umask()


def _umask() -> int:
    # os.umask() can only be read by setting it, which races with other threads;
    # Linux shows it in /proc instead.
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    return _DEFAULT_UMASK

"""Atomic file writes: a crash mid-save leaves the previous file intact.

The recipe, in the order that makes it safe:

1. write everything to a temp file *in the same directory* (``os.replace`` is only atomic
   within one file system), named ``.<name>.tmp-<pid>-<random>`` so a stray one says
   where it came from;
2. ``flush`` + ``os.fsync`` the temp file, so its bytes are on disk before its name is;
3. ``os.replace`` it onto the target: readers see the old file or the new one, never half;
4. ``fsync`` the directory, so the rename itself survives a power cut.

A process killed between 1 and 3 leaves its temp file behind. Nothing reads those, and a
later save to the same path removes the ones whose process is gone (after a grace period,
because a live writer on another machine sharing the directory would look dead to us).

Example::

    with atomic_write("ckpt.safetensors") as f:
        f.write(b"...")            # the target changes only when the block ends without error
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time

__all__ = ["atomic_write", "atomic_path"]

# Stale temp files of dead processes are removed once they are this old (seconds).
STALE_AFTER_S = 600.0


@contextlib.contextmanager
def atomic_write(path):
    """Open a temp file for binary writing; on success it replaces ``path`` atomically.

    On an exception the temp file is removed and ``path`` is left as it was.
    """
    with atomic_path(path) as tmp:
        # os.open with O_EXCL rather than tempfile.mkstemp: mkstemp creates mode 0600 files,
        # while a checkpoint should get the usual permissions (0666 minus the umask), as open()
        # would give.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0),
                     0o666)
        with os.fdopen(fd, "wb") as f:
            yield f


@contextlib.contextmanager
def atomic_path(path):
    """The recipe above for writers that open their file by name (``gguf.GGUFWriter``): yields
    a temp path in ``path``'s directory for the block to create and write; when the block ends
    without error the file is fsynced and replaces ``path``, and when it fails it is removed.

    Example::

        with atomic_path("model.gguf") as tmp:
            writer = gguf.GGUFWriter(tmp, "llama") ...
    """
    path = os.fspath(path)
    directory, name = os.path.split(os.path.abspath(path))
    _remove_stale_temp_files(directory, name)
    tmp = os.path.join(directory, f"{temp_file_prefix(path)}{os.getpid()}-{secrets.token_hex(4)}")
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_directory(directory)


def temp_file_prefix(path) -> str:
    """The name prefix of the temp files ``atomic_write(path)`` creates (for tests and cleanup)."""
    return f".{os.path.basename(os.path.abspath(os.fspath(path)))}.tmp-"


def _fsync_directory(directory: str) -> None:
    if os.name == "nt":  # Windows cannot open a directory; its rename is durable enough
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:  # some file systems (e.g. certain network mounts) refuse; the data is safe anyway
        pass
    finally:
        os.close(fd)


def _remove_stale_temp_files(directory: str, name: str) -> None:
    """Delete ``.<name>.tmp-<pid>-*`` files left by processes that died mid-save."""
    prefix = f".{name}.tmp-"
    now = time.time()
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return
    for entry in entries:
        if not entry.name.startswith(prefix):
            continue
        pid = entry.name[len(prefix):].split("-", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid() or _process_alive(int(pid)):
            continue
        with contextlib.suppress(OSError):
            if now - entry.stat(follow_symlinks=False).st_mtime >= STALE_AFTER_S:
                os.unlink(entry.path)


def _process_alive(pid: int) -> bool:
    if os.name == "nt":  # no cheap check; keep the file rather than risk deleting a live one
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it exists, owned by someone else
        return True
    return True

"""Frames of the plugin protocol (``docs/plugin-protocol.md``, section 1): how one message is
written to and read from a pipe, on either side.

A frame is the magic ``GRD1``, the header's length (uint32, little-endian), the payload's
length (uint64), the header (one JSON object) and the payload (raw bytes).

Example::

    >>> write_frame(pipe, {"op": "sync", "id": 3})
    >>> header, payload = read_frame(pipe)
"""

from __future__ import annotations

import json
import math
import os
import select
import struct
import time

__all__ = ["MAGIC", "FrameError", "TruncatedFrame", "FrameReader", "encode_frame", "read_frame",
           "write_frame", "parse_frame", "frame_size", "final_header", "spin_seconds",
           "encode_float", "decode_float"]

MAGIC = b"GRD1"
_PREFIX = struct.Struct("<4sIQ")
#: headers longer than this are not headers (a stray write to the plugin's stdout, say)
MAX_HEADER = 1 << 24


class FrameError(ValueError):
    """Bytes that are not a frame: the wrong magic, a header that is not one JSON object."""


class TruncatedFrame(FrameError):
    """The stream ended inside a frame (the writer went away mid-message)."""


def encode_frame(header: dict, payload=b"") -> list:
    """The frame's pieces, ready for ``writelines``: prefix and header, then the payload (a
    bytes-like object; not copied)."""
    head = json.dumps(header, separators=(",", ":"), allow_nan=False).encode()
    size = memoryview(payload).nbytes
    return [_PREFIX.pack(MAGIC, len(head), size) + head, payload] if size else \
        [_PREFIX.pack(MAGIC, len(head), 0) + head]


def write_frame(stream, header: dict, payload=b"") -> None:
    """Write one frame to a binary stream and flush it."""
    stream.writelines(encode_frame(header, payload))
    stream.flush()


def read_frame(stream) -> tuple[dict, bytearray] | None:
    """``(header, payload)`` of the next frame on a binary stream, or None at the end of the
    stream (the other side closed it). FrameError for bytes that are not a frame."""
    prefix = _read_exactly(stream, _PREFIX.size, allow_eof=True)
    if prefix is None:
        return None
    size = frame_size(prefix)
    head_size = _PREFIX.unpack_from(prefix)[1]
    header = _header(_read_exactly(stream, head_size))
    rest = size - _PREFIX.size - head_size
    return header, _read_exactly(stream, rest) if rest else bytearray()


def frame_size(buffer, at: int = 0) -> int | None:
    """The whole size of the frame that begins at ``at`` in ``buffer``, once its prefix is
    there; FrameError if it is not the prefix of a frame."""
    if len(buffer) - at < _PREFIX.size:
        return None
    magic, head_size, payload_size = _PREFIX.unpack_from(buffer, at)
    if magic != MAGIC:
        raise FrameError(f"expected a frame starting with {MAGIC!r}, got "
                         f"{bytes(buffer[at:at + 4])!r}")
    if head_size > MAX_HEADER:
        raise FrameError(f"a frame header of {head_size} bytes (at most {MAX_HEADER})")
    return _PREFIX.size + head_size + payload_size


def final_header(buffer) -> dict | None:
    """The header of the whole frame that ``buffer`` ends with, or None when it does not end
    with one. Found from the end, at the last magic, so it costs the same however many frames
    come before: a reader looks at what the writer sent last without reading the rest. (A
    frame whose payload holds the magic is not found; only bytes that happened to form a
    whole frame after a magic in a payload could be mistaken for one.)"""
    at = buffer.rfind(MAGIC)
    try:
        size = frame_size(buffer, at) if at >= 0 else None
        if size is None or at + size != len(buffer):
            return None
        start = at + _PREFIX.size
        return _header(buffer[start:start + _PREFIX.unpack_from(buffer, at)[1]])
    except FrameError:
        return None


def parse_frame(buffer, copy: bool = True) -> tuple[tuple | None, int]:
    """``((header, payload), bytes used)`` for the frame that ``buffer`` (a bytearray) begins
    with, or ``(None, 0)`` while it is incomplete. The payload is a copy, or with
    ``copy=False`` a memoryview of ``buffer``."""
    size = frame_size(buffer)
    if size is None or len(buffer) < size:
        return None, 0
    end = _PREFIX.size + _PREFIX.unpack_from(buffer)[1]
    header = _header(buffer[_PREFIX.size:end])
    return (header, buffer[end:size] if copy else memoryview(buffer)[end:size]), size


class FrameReader:
    """Frames from a pipe's file descriptor, read into a buffer of its own: one system call
    brings in as many frames as the pipe holds, and a large frame is read straight into a
    buffer of its size.

    Example::

        >>> frames = FrameReader(sys.stdin.fileno())
        >>> header, payload = frames.read()      # None once the other side closed the pipe
    """

    def __init__(self, fd: int):
        self.fd = fd
        os.set_blocking(fd, False)
        self._buffer = bytearray()

    def read(self, deadline: float | None = None, spin: float = 0.0):
        """``(header, payload)`` of the next frame, or None at the end of the stream.
        TimeoutError once ``time.monotonic()`` passes ``deadline`` with no frame; FrameError
        for bytes that are not a frame, or a stream that ends inside one. The payload is the
        frame's own (a copy, or a buffer read for it alone): the caller may keep it.

        With the pipe empty it polls it for ``spin`` seconds before it sleeps in ``select``:
        waking a sleeping process costs tens of microseconds, more than the rest of a round
        trip of small messages. Spin where an answer is due soon (see :func:`spin_seconds`);
        polling takes a CPU the other side may want."""
        while True:
            frame, used = parse_frame(self._buffer)
            if frame is not None:
                del self._buffer[:used]
                return frame
            size = frame_size(self._buffer)
            if size is not None and size - len(self._buffer) > 1 << 16:
                return self._read_large(size, deadline)
            chunk = self._read_some(deadline, spin)
            if not chunk:
                if self._buffer:
                    raise TruncatedFrame(f"the stream ended inside a frame ({len(self._buffer)} "
                                     "bytes of it)")
                return None
            self._buffer += chunk
            self._arrived()

    def read_ahead(self) -> None:
        """Take in what the pipe holds now, without waiting for more."""
        try:
            chunk = os.read(self.fd, 1 << 20)
        except BlockingIOError:
            return
        if chunk:      # (the end of the stream is for read to find)
            self._buffer += chunk
            self._arrived()

    def _arrived(self) -> None:
        """Bytes came in: the buffer holds them, after the frames not read yet. A subclass
        looks ahead here."""

    def _read_large(self, size: int, deadline) -> tuple[dict, memoryview]:
        buffer = bytearray(size)
        got = len(self._buffer)
        buffer[:got] = self._buffer
        self._buffer = bytearray()
        view = memoryview(buffer)
        while got < size:
            self._wait(deadline)
            try:
                n = os.readv(self.fd, [view[got:]])
            except BlockingIOError:
                continue
            if not n:
                raise TruncatedFrame(f"the stream ended inside a frame ({got} of {size} bytes)")
            got += n
        del view
        frame, _ = parse_frame(buffer, copy=False)
        return frame

    def _read_some(self, deadline, spin: float) -> bytes:
        end = time.perf_counter() + spin
        while True:
            try:
                return os.read(self.fd, 1 << 20)
            except BlockingIOError:
                pass
            if time.perf_counter() >= end:
                self._wait(deadline)

    def _wait(self, deadline) -> None:
        wait = None if deadline is None else max(0.0, deadline - time.monotonic())
        if not select.select([self.fd], [], [], wait)[0]:
            raise TimeoutError("no frame arrived in time")


def spin_seconds() -> float:
    """How long a reader polls an empty pipe before it sleeps: ``GRADIENT_PLUGIN_SPIN_US``
    microseconds (default 100), and never on a machine with one CPU for this process, where
    polling would only keep the writer from running."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:     # not on Linux
        cpus = os.cpu_count() or 1
    if cpus < 2:
        return 0.0
    try:
        return max(0.0, float(os.environ.get("GRADIENT_PLUGIN_SPIN_US", "100"))) * 1e-6
    except ValueError:
        return 100e-6


def _header(data) -> dict:
    try:
        header = json.loads(bytes(data))
    except ValueError as e:
        raise FrameError(f"a frame header that is not JSON: {e}") from None
    if type(header) is not dict:
        raise FrameError(f"a frame header that is not a JSON object: {type(header).__name__}")
    return header


def _read_exactly(stream, n: int, allow_eof: bool = False):
    buffer = bytearray(n)
    view = memoryview(buffer)
    got = 0
    while got < n:
        k = stream.readinto(view[got:])
        if not k:
            if allow_eof and got == 0:
                return None
            raise TruncatedFrame(f"the stream ended inside a frame ({got} of {n} bytes)")
        got += k
    return buffer


def encode_float(value):
    """A number as the protocol writes it: itself, or "inf", "-inf", "nan"."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if value != value else ("inf" if value > 0 else "-inf")
    return value


def decode_float(value):
    """The inverse of :func:`encode_float`."""
    return float(value) if isinstance(value, str) else value

"""One running plugin process, seen from the client: start it, shake hands, send requests,
wait for the synchronising replies, and turn every way it can fail into a
:class:`~gradient.errors.PluginError` (``docs/plugin-protocol.md``, sections 1-3 and 6).

Requests are written as they come and most get no reply, so a forward pass streams into the
plugin's stdin while it computes. A thread keeps the last 64 KiB of the plugin's stderr (it
would block on a full pipe otherwise) to quote when the plugin fails. Every wait, for a reply
or for room in the pipe, is bounded by ``GRADIENT_PLUGIN_TIMEOUT`` seconds (default 60).

Example::

    >>> session = Session("reference", [sys.executable, "-m", "gradient.backends.plugin.reference"])
    >>> session.send({"op": "full", "shape": [2], "value": 1.0, "dtype": "float32", "out": [1]})
    >>> header, payload = session.request({"op": "to_bytes", "x": 1})
"""

from __future__ import annotations

import os
import select
import subprocess
import threading
import time

from ...errors import PluginError
from ...version import __version__
from .frames import FrameError, FrameReader, TruncatedFrame, encode_frame, spin_seconds
from .wire import PROTOCOL

__all__ = ["Session", "timeout"]

_STDERR_KEEP = 64 * 1024
#: requests queued before they are written in one piece
_BATCH = 32


def timeout() -> float:
    """Seconds a synchronising request may wait: ``GRADIENT_PLUGIN_TIMEOUT``, default 60."""
    try:
        return float(os.environ.get("GRADIENT_PLUGIN_TIMEOUT", "60"))
    except ValueError:
        return 60.0


class Session:
    """A started plugin process after a successful handshake (:attr:`hello` is the plugin's
    reply); PluginError if it cannot be started or does not answer as version 1."""

    def __init__(self, name: str, argv: list[str], environment: dict | None = None):
        self.name = name
        self.dead: str | None = None      # why the session ended, once it has
        self._next_id = 0
        self._stderr = bytearray()
        try:
            self._process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                             stderr=subprocess.PIPE, bufsize=0,
                                             env={**os.environ, **(environment or {})})
        except OSError as e:
            raise PluginError(f"plugin {name!r}: cannot start {argv[0]!r}: {e}") from None
        self._stdin, self._stdout = self._process.stdin, self._process.stdout
        # writes that would block wait in select (bounded by the timeout) instead
        os.set_blocking(self._stdin.fileno(), False)
        self._replies = FrameReader(self._stdout.fileno())
        self._spin = spin_seconds()
        self._queued: list = []         # requests not written yet (see send)
        threading.Thread(target=self._drain_stderr, daemon=True,
                         name=f"gradient plugin {name} stderr").start()
        header, _ = self.request({"op": "hello", "protocol": PROTOCOL,
                                  "client": f"gradient {__version__}"})
        if header.get("protocol") != PROTOCOL:
            self._fail(f"speaks protocol {header.get('protocol')!r}, gradient speaks {PROTOCOL}")
        self.hello = header

    # -- sending
    def send(self, header: dict, payload=b"") -> int:
        """Queue one request that gets no reply; returns its id. Requests are written in
        batches (:data:`_BATCH` of them, or at once with a payload, which the caller may change
        afterwards, or before any synchronising request): one write and one wake-up of the
        plugin for many small ops."""
        if self.dead is not None:
            raise PluginError(f"plugin {self.name!r} is no longer running ({self.dead}); "
                              "tensors on it are lost, a new tensor on the device starts it again")
        self._next_id += 1
        header["id"] = self._next_id
        pieces = encode_frame(header, payload)
        self._queued.append(pieces[0])
        if len(pieces) > 1 or len(self._queued) >= _BATCH:
            self.flush(pieces[1:])
        return self._next_id

    def flush(self, extra=()) -> None:
        """Write the queued requests (then ``extra`` pieces) to the plugin."""
        data = b"".join(self._queued)
        self._queued.clear()
        try:
            self._write_all(memoryview(data))
            for piece in extra:
                self._write_all(memoryview(piece).cast("B"))
        except (BrokenPipeError, ValueError, OSError):
            self._fail("its process exited")

    def request(self, header: dict, payload=b"") -> tuple[dict, bytearray]:
        """Write one synchronising request (after those queued) and wait for its reply
        ``(header, payload)``. An ``"ok": false`` reply is returned as it is (the caller raises
        it)."""
        rid = self.send(header, payload)
        if self._queued:
            self.flush()
        reply = self._read_reply()
        if reply[0].get("id") != rid:
            self._fail(f"answered request {reply[0].get('id')!r} where {rid} was expected")
        if not reply[0].get("ok", False) and header["op"] == "hello":
            self._fail(str(reply[0].get("error", {}).get("message", "refused the handshake")))
        return reply

    def _write_all(self, view) -> None:
        fd = self._stdin.fileno()
        limit = None
        while view.nbytes:
            try:
                view = view[os.write(fd, view):]
                continue
            except BlockingIOError:   # the pipe is full: wait until the plugin reads
                pass
            if limit is None:
                limit = time.monotonic() + timeout()
            _, ready, _ = select.select([], [fd], [], max(0.0, limit - time.monotonic()))
            if not ready:
                self._fail(f"did not read its requests for {timeout():g} s "
                           "(GRADIENT_PLUGIN_TIMEOUT)")

    def _read_reply(self):
        """The next frame from the plugin, each wait bounded by the timeout."""
        try:
            frame = self._replies.read(time.monotonic() + timeout(), self._spin)
        except TimeoutError:
            self._fail(f"did not answer within {timeout():g} s (GRADIENT_PLUGIN_TIMEOUT)")
        except TruncatedFrame:
            self._fail("its process exited")
        except FrameError as e:
            self._fail(f"sent something that is not a frame ({e})")
        if frame is None:
            self._fail("its process exited")
        return frame

    # -- ending
    def close(self) -> None:
        """End the session: close the plugin's stdin (it exits), kill it if it lingers."""
        if self.dead is None:
            self.dead = "closed"
        try:
            self._stdin.close()
            self._process.wait(timeout=2)
        except (OSError, subprocess.TimeoutExpired):
            self._process.kill()
        self._close_pipes()

    def _close_pipes(self) -> None:
        for pipe in (self._stdin, self._stdout):
            try:
                pipe.close()
            except OSError:
                pass

    def _fail(self, what: str):
        """Kill the process and raise PluginError saying ``what`` and quoting its stderr."""
        self.dead = what
        self._process.kill()
        try:
            self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        self._close_pipes()
        time.sleep(0.05)   # the stderr thread's last read
        tail = bytes(self._stderr[-4000:]).decode("utf-8", "replace").strip()
        code = self._process.returncode
        status = f" (exit status {code})" if code is not None else ""
        raise PluginError(f"plugin {self.name!r}: {what}{status}; tensors on it are lost, and a "
                          "new tensor on the device starts it again"
                          + (f". The end of its stderr:\n{tail}" if tail else
                             ". It wrote nothing to stderr."))

    def _drain_stderr(self) -> None:
        stream = self._process.stderr
        while True:
            chunk = stream.read1(65536) if hasattr(stream, "read1") else stream.read(65536)
            if not chunk:
                stream.close()
                return
            self._stderr += chunk
            if len(self._stderr) > 2 * _STDERR_KEEP:
                del self._stderr[:-_STDERR_KEEP]

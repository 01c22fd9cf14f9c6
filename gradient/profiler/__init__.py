"""``torch.profiler``: :class:`profile` records each operation's time (and the backward's,
and ``record_function`` ranges) over a training loop's steps, on a :func:`schedule` (skip,
wait, warm up, record, hand the results to ``on_trace_ready`` and start again), as PyTorch's.
Only host time is measured (``ProfilerActivity.CUDA`` is accepted; a GPU's ops are timed as
their host calls). See :mod:`gradient.autograd.profiler` for the events and tables.

Example::

    >>> from gradient.profiler import ProfilerActivity, profile, schedule
    >>> with profile(activities=[ProfilerActivity.CPU],
    ...              schedule=schedule(wait=1, warmup=1, active=3),
    ...              on_trace_ready=tensorboard_trace_handler("./log")) as prof:
    ...     for batch in loader:
    ...         train_step(batch)
    ...         prof.step()
    >>> print(prof.key_averages().table(sort_by="cpu_time_total", row_limit=10))
"""

from __future__ import annotations

import enum
import os
import socket
import time

from ..autograd import profiler as _recording
from ..autograd.profiler import EventList, record_function
from ..errors import ArgumentValueError, UsageError

__all__ = ["profile", "record_function", "schedule", "tensorboard_trace_handler",
           "ProfilerActivity", "ProfilerAction", "EventList"]


class ProfilerActivity(enum.Enum):
    CPU = 0
    CUDA = 1
    XPU = 2
    MTIA = 3


class ProfilerAction(enum.Enum):
    """What a scheduled profile does at a step."""
    NONE = 0
    WARMUP = 1
    RECORD = 2
    RECORD_AND_SAVE = 3


def schedule(*, wait: int, warmup: int, active: int, repeat: int = 0, skip_first: int = 0,
             skip_first_wait: int = 0):
    """A step -> :class:`ProfilerAction` function: after ``skip_first`` steps, cycles of
    ``wait`` idle steps, ``warmup`` steps (running, not kept) and ``active`` recorded ones,
    the last of which hands the results on; ``repeat`` cycles (0: for ever).
    ``skip_first_wait`` leaves out the first cycle's wait.

    Example: ``schedule(wait=1, warmup=1, active=2)`` gives NONE, WARMUP, RECORD,
    RECORD_AND_SAVE, NONE, WARMUP ...
    """
    if wait < 0 or warmup < 0 or active <= 0 or repeat < 0 or skip_first < 0:
        raise ArgumentValueError("schedule: wait, warmup, repeat and skip_first must be >= 0 and "
                                 "active > 0")
    cycle = wait + warmup + active

    def action(step: int) -> ProfilerAction:
        if step < skip_first:
            return ProfilerAction.NONE
        step -= skip_first
        if skip_first_wait:
            step += wait
        if repeat > 0 and step / cycle >= repeat:
            return ProfilerAction.NONE
        at = step % cycle
        if at < wait:
            return ProfilerAction.NONE
        if at < wait + warmup:
            return ProfilerAction.WARMUP
        return ProfilerAction.RECORD if at < cycle - 1 else ProfilerAction.RECORD_AND_SAVE
    return action


def _always_record(step: int) -> ProfilerAction:
    return ProfilerAction.RECORD


def tensorboard_trace_handler(dir_name: str, worker_name: str | None = None,
                              use_gzip: bool = False):
    """An ``on_trace_ready`` that writes each recorded cycle as a Chrome trace,
    ``dir_name/<worker>.<time>.pt.trace.json`` (TensorBoard's profiler plugin reads it)."""
    def handler(prof) -> None:
        os.makedirs(dir_name, exist_ok=True)
        worker = worker_name or f"{socket.gethostname()}_{os.getpid()}"
        path = os.path.join(dir_name, f"{worker}.{time.time_ns()}.pt.trace.json")
        if use_gzip:
            import gzip
            import shutil
            prof.export_chrome_trace(path)
            with open(path, "rb") as plain, gzip.open(path + ".gz", "wb") as packed:
                shutil.copyfileobj(plain, packed)
            os.remove(path)
        else:
            prof.export_chrome_trace(path)
    return handler


class profile:  # noqa: N801  (torch's name)
    """Record operations over the steps a schedule marks (all of them without one); call
    :meth:`step` after each training step. ``on_trace_ready(prof)`` is called at the end of
    each recorded cycle and when the block ends while recording; ``key_averages()``,
    ``events()`` and ``export_chrome_trace`` read the last cycle recorded. Each recorded step
    is a range ``ProfilerStep#<n>``."""

    def __init__(self, *, activities=None, schedule=None, on_trace_ready=None,
                 record_shapes: bool = False, profile_memory: bool = False,
                 with_stack: bool = False, with_flops: bool = False, with_modules: bool = False,
                 experimental_config=None, execution_trace_observer=None, acc_events=False,
                 use_cuda=None, custom_trace_id_callback=None):
        self.schedule = schedule or _always_record
        self.on_trace_ready = on_trace_ready
        self.record_shapes = record_shapes
        self.step_num = 0
        self._recorder = None       # the autograd profile recording the current cycle
        self._last = None           # the last cycle's (for key_averages ...)
        self._step_range = None

    # -- the schedule
    def start(self) -> None:
        self.step_num = 0
        self._act(self.schedule(self.step_num))

    def stop(self) -> None:
        if self._recorder is not None:
            self._finish_cycle()

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def step(self) -> None:
        """One training step ended: the schedule's next action starts."""
        before = self.schedule(self.step_num)
        self.step_num += 1
        if before is ProfilerAction.RECORD_AND_SAVE:
            self._finish_cycle()
        self._act(self.schedule(self.step_num))

    def _act(self, action: ProfilerAction) -> None:
        recording = action in (ProfilerAction.RECORD, ProfilerAction.RECORD_AND_SAVE)
        if recording and self._recorder is None:
            self._recorder = _recording.profile(record_shapes=self.record_shapes)
            self._recorder.start()
        if self._step_range is not None:
            self._step_range.__exit__(None, None, None)
            self._step_range = None
        if recording:
            self._step_range = record_function(f"ProfilerStep#{self.step_num}")
            self._step_range.__enter__()

    def _finish_cycle(self) -> None:
        if self._step_range is not None:
            self._step_range.__exit__(None, None, None)
            self._step_range = None
        self._recorder.stop()
        self._last, self._recorder = self._recorder, None
        if self.on_trace_ready is not None:
            self.on_trace_ready(self)

    # -- the results of the last cycle
    def _results(self):
        if self._last is None:
            raise UsageError("profile: nothing recorded yet (the schedule has not reached "
                             "the end of a recorded cycle)")
        return self._last

    def events(self) -> EventList:
        return self._results().events()

    def key_averages(self, group_by_input_shape: bool = False, group_by_stack_n: int = 0,
                     **_ignored) -> EventList:
        return self._results().key_averages(group_by_input_shape)

    def export_chrome_trace(self, path) -> None:
        self._results().export_chrome_trace(path)

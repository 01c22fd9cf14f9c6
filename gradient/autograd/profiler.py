"""Where the time goes, op by op: ``torch.autograd.profiler``'s ``profile`` and
``record_function`` (the scheduled ``gradient.profiler.profile`` is built on them).

While a :class:`profile` records, every operation (each :class:`~.function.ArrayFunction` and
user :class:`~.function.Function`, forward, and each node the backward runs, named
``<Op>Backward``) and every :class:`record_function` range becomes a :class:`FunctionEvent`
with its wall-clock start and end, its thread, and (``record_shapes``) its inputs' shapes.
Ranges nest: an event's *self* time is its time less its children's. ``key_averages()``
groups events by name (and input shapes), ``table()`` prints them as PyTorch's does, and
``export_chrome_trace(path)`` writes the trace ``chrome://tracing`` and Perfetto open.

When nothing records, an operation pays one test of a module global.

Example::

    >>> with profile(record_shapes=True) as prof:
    ...     with record_function("forward"):
    ...         loss = model(x).sum()
    ...     loss.backward()
    >>> print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=10))
"""

from __future__ import annotations

import json
import os
import threading
import time
from ..errors import ArgumentValueError, UsageError

__all__ = ["profile", "record_function", "FunctionEvent", "FunctionEventAvg", "EventList"]

#: The profile recording now, or None (read by ArrayFunction.apply and the backward engine).
active = None

_stacks = threading.local()   # each thread's open events, innermost last


def _now_us() -> float:
    return time.perf_counter_ns() / 1000.0


def _shapes(args) -> list:
    return [list(a.shape) if hasattr(a, "shape") and hasattr(a, "grad_fn") else []
            for a in args]


def begin(name: str, args=()) -> "FunctionEvent":
    """Open an event named ``name`` (``args``: the inputs whose shapes it records) in this
    thread, inside the innermost one open."""
    profile_ = active
    stack = getattr(_stacks, "open", None)
    if stack is None:
        stack = _stacks.open = []
    event = FunctionEvent(name, _now_us(), threading.get_ident(),
                          _shapes(args) if profile_.record_shapes else [])
    event.parent = stack[-1] if stack else None
    stack.append(event)
    return event


def end(event: "FunctionEvent") -> None:
    """Close ``event`` (and any left open inside it by an exception) and file it with its
    parent, or with the profile."""
    event.end_us = _now_us()
    stack = getattr(_stacks, "open", [])
    while stack and stack.pop() is not event:
        pass
    if event.parent is not None:
        event.parent.children.append(event)
    profile_ = active
    if profile_ is not None:
        profile_._events.append(event)


class FunctionEvent:
    """One recorded operation or range: ``name``, ``start_us``/``end_us`` (microseconds of
    ``time.perf_counter``), ``thread``, ``input_shapes``, ``children``."""

    __slots__ = ("name", "start_us", "end_us", "thread", "input_shapes", "children", "parent")

    def __init__(self, name, start_us, thread, input_shapes):
        self.name, self.start_us, self.end_us = name, start_us, start_us
        self.thread, self.input_shapes = thread, input_shapes
        self.children, self.parent = [], None

    key = property(lambda self: self.name)

    @property
    def cpu_time_total(self) -> float:
        return self.end_us - self.start_us

    @property
    def self_cpu_time_total(self) -> float:
        return self.cpu_time_total - sum(c.cpu_time_total for c in self.children)

    @property
    def count(self) -> int:
        return 1

    def __repr__(self) -> str:
        return (f"<FunctionEvent {self.name} cpu_time_total={self.cpu_time_total:.1f}us "
                f"self={self.self_cpu_time_total:.1f}us>")


class FunctionEventAvg:
    """The events of one name (and input shapes): their ``count`` and summed times."""

    def __init__(self, key: str, input_shapes=None):
        self.key, self.input_shapes = key, input_shapes
        self.count = 0
        self.cpu_time_total = self.self_cpu_time_total = 0.0
        # no device time or memory is measured: zeros, for code that reads them
        self.cuda_time_total = self.self_cuda_time_total = self.device_time_total = 0.0
        self.self_device_time_total = 0.0
        self.cpu_memory_usage = self.self_cpu_memory_usage = 0

    def add(self, event) -> "FunctionEventAvg":
        self.count += event.count
        self.cpu_time_total += event.cpu_time_total
        self.self_cpu_time_total += event.self_cpu_time_total
        return self

    @property
    def cpu_time(self) -> float:
        """Average time per call (microseconds)."""
        return self.cpu_time_total / self.count if self.count else 0.0

    def __repr__(self) -> str:
        return (f"<FunctionEventAvg key={self.key} count={self.count} "
                f"cpu_time_total={self.cpu_time_total:.1f}us>")


_SORT_KEYS = {"cpu_time_total", "self_cpu_time_total", "cpu_time", "count",
              "cuda_time_total", "self_cuda_time_total", "device_time_total",
              "self_device_time_total", "cpu_memory_usage", "self_cpu_memory_usage"}


class EventList(list):
    """Events (or their averages) with PyTorch's ways of reading them."""

    def key_averages(self, group_by_input_shape: bool = False) -> "EventList":
        """One :class:`FunctionEventAvg` per name (per name and input shapes)."""
        groups = {}
        for event in self:
            shapes = str(event.input_shapes) if group_by_input_shape else None
            key = (event.key, shapes)
            if key not in groups:
                groups[key] = FunctionEventAvg(event.key, shapes)
            groups[key].add(event)
        return EventList(groups.values())

    @property
    def self_cpu_time_total(self) -> float:
        return sum(e.self_cpu_time_total for e in self)

    def total_average(self) -> FunctionEventAvg:
        total = FunctionEventAvg("Total")
        for event in self:
            total.add(event)
        return total

    def table(self, sort_by: str | None = None, row_limit: int = 100, max_name_column_width=55,
              header: str | None = None, top_level_events_only: bool = False, **_ignored) -> str:
        """A text table: name, self and total time (and their shares of all self time), the
        average, the number of calls; ``sort_by`` one of the times or ``"count"``."""
        rows = list(self)
        if top_level_events_only:
            rows = [e for e in rows if getattr(e, "parent", None) is None]
        if sort_by is not None:
            if sort_by not in _SORT_KEYS:
                raise ArgumentValueError(
                    f"table: sort_by must be one of {sorted(_SORT_KEYS)}, got "
                    f"{sort_by!r}")
            rows.sort(key=lambda e: getattr(e, sort_by), reverse=True)
        if row_limit is not None and row_limit > 0:
            rows = rows[:row_limit]
        everything = self.self_cpu_time_total or 1.0
        shapes = any(getattr(e, "input_shapes", None) for e in rows)
        name_width = min(max([len(e.key) for e in rows] + [4]) + 2, max_name_column_width)
        columns = ["Self CPU %", "Self CPU", "CPU total %", "CPU total", "CPU time avg",
                   "# of Calls"] + (["Input Shapes"] if shapes else [])
        widths = [name_width] + [12] * 6 + ([40] if shapes else [])
        rule = "  ".join("-" * w for w in widths)
        lines = ([header] if header else []) + [rule, "  ".join(
            [("Name").rjust(name_width)] + [c.rjust(w) for c, w in zip(columns, widths[1:])]),
            rule]
        for e in rows:
            name = e.key if len(e.key) <= name_width else e.key[:name_width - 3] + "..."
            count = e.count
            cells = [f"{100 * e.self_cpu_time_total / everything:.2f}%",
                     _time(e.self_cpu_time_total),
                     f"{100 * e.cpu_time_total / everything:.2f}%", _time(e.cpu_time_total),
                     _time(e.cpu_time_total / count if count else 0.0), str(count)]
            if shapes:
                cells.append(str(e.input_shapes or "")[:40])
            lines.append("  ".join([name.rjust(name_width)] +
                                   [c.rjust(w) for c, w in zip(cells, widths[1:])]))
        lines += [rule, f"Self CPU time total: {_time(self.self_cpu_time_total)}", ""]
        return "\n".join(lines)

    def export_chrome_trace(self, path) -> None:
        """The events as Chrome's trace format (``chrome://tracing``, Perfetto)."""
        pid = os.getpid()
        trace = [{"name": e.name, "ph": "X", "cat": "cpu_op", "ts": e.start_us,
                  "dur": e.cpu_time_total, "pid": pid, "tid": e.thread,
                  "args": {"Input Dims": e.input_shapes} if e.input_shapes else {}}
                 for e in self if isinstance(e, FunctionEvent)]
        with open(path, "w", encoding="utf-8") as f:
            json.dump({"traceEvents": trace, "displayTimeUnit": "ms"}, f)


def _time(us: float) -> str:
    if us >= 1e6:
        return f"{us / 1e6:.3f}s"
    if us >= 1e3:
        return f"{us / 1e3:.3f}ms"
    return f"{us:.3f}us"


class profile:  # noqa: N801  (torch's name)
    """Record every operation and range between ``__enter__`` and ``__exit__`` (or
    :meth:`start` and :meth:`stop`); see the module docstring. ``use_cuda``,
    ``profile_memory``, ``with_stack`` ... are accepted; only host time is measured."""

    def __init__(self, enabled: bool = True, *, use_cuda: bool = False, use_device=None,
                 record_shapes: bool = False, with_flops: bool = False,
                 profile_memory: bool = False, with_stack: bool = False,
                 with_modules: bool = False, use_kineto: bool = False, use_cpu: bool = True,
                 experimental_config=None, acc_events: bool = False, custom_trace_id_callback=None):
        self.enabled, self.record_shapes = enabled, record_shapes
        self._events: list = []
        self.function_events = None

    def start(self) -> None:
        global active
        if not self.enabled:
            return
        if active is not None and active is not self:
            raise UsageError("profile: another profiler is already recording in this "
                             "process; stop it first")
        self._events = []
        active = self

    def stop(self) -> None:
        global active
        if active is self:
            active = None
        self.function_events = EventList(sorted(self._events, key=lambda e: e.start_us))

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def _events_or_raise(self) -> EventList:
        if self.function_events is None:
            raise UsageError("profile: no results yet; read them after the profiled block "
                             "(or stop())")
        return self.function_events

    def events(self) -> EventList:
        return self._events_or_raise()

    def key_averages(self, group_by_input_shape: bool = False, group_by_stack_n: int = 0,
                     **_ignored) -> EventList:
        return self._events_or_raise().key_averages(group_by_input_shape)

    def table(self, *args, **kwargs) -> str:
        return self._events_or_raise().table(*args, **kwargs)

    def export_chrome_trace(self, path) -> None:
        self._events_or_raise().export_chrome_trace(path)

    @property
    def self_cpu_time_total(self) -> float:
        return self._events_or_raise().self_cpu_time_total

    def total_average(self) -> FunctionEventAvg:
        return self._events_or_raise().total_average()

    def __str__(self) -> str:
        return self.table() if self.function_events is not None else "<profile: recording>"


class record_function:  # noqa: N801  (torch's name)
    """A named range in the profile (``with record_function("attention"): ...``, or as a
    decorator); nothing when no profile records."""

    def __init__(self, name: str, args: str | None = None):
        self.name, self.args = name, args
        self._event = None

    def __enter__(self):
        self._event = begin(self.name) if active is not None else None
        return self

    def __exit__(self, *exc):
        if self._event is not None:
            end(self._event)
            self._event = None
        return False

    def __call__(self, fn):
        import functools

        @functools.wraps(fn)
        def ranged(*args, **kwargs):
            with record_function(self.name):
                return fn(*args, **kwargs)
        return ranged


def record_backward(node, grads, apply):
    """The backward engine's ``node.apply(grads)`` as an event ``<Op>Backward``."""
    event = begin(node.name())
    try:
        return apply(node, grads)
    finally:
        end(event)


"""gradient.autograd.profiler and gradient.profiler: every op and backward node an event, ranges
nesting with self times, tables, Chrome traces, and torch.profiler's schedules (the same
actions as torch's, cycles handed to on_trace_ready)."""

import json
import os

import numpy as np
import pytest

import gradient
from gradient.autograd import profiler as autograd_profiler
from gradient.profiler import (ProfilerAction, profile, record_function, schedule,
                               tensorboard_trace_handler)


def _step(a, b):
    return (a @ b).relu().sum()


def test_every_op_and_backward_node_is_an_event_nested_in_its_range():
    a, b = gradient.randn(4, 3, requires_grad=True), gradient.randn(3, 2)
    with autograd_profiler.profile(record_shapes=True) as prof:
        with record_function("forward"):
            loss = _step(a, b)
        loss.backward()
    events = prof.events()
    names = [e.name for e in events]
    assert names[:4] == ["forward", "Matmul", "ReLU", "Sum"]
    assert {"SumBackward", "ReLUBackward", "MatmulBackward"} <= set(names)
    forward = events[0]
    assert [c.name for c in forward.children] == ["Matmul", "ReLU", "Sum"]
    assert forward.self_cpu_time_total == pytest.approx(
        forward.cpu_time_total - sum(c.cpu_time_total for c in forward.children))
    assert all(c.start_us >= forward.start_us and c.end_us <= forward.end_us
               for c in forward.children)
    backward = next(e for e in events if e.name == "MatmulBackward")
    assert "Matmul" in [c.name for c in backward.children]   # its gradient, computed by ops
    assert events[1].input_shapes == [[4, 3], [3, 2], []]   # (its other argument: [], as torch)
    averages = {e.key: e for e in prof.key_averages()}
    assert averages["Matmul"].count == 2 and averages["forward"].count == 1
    assert averages["Matmul"].cpu_time_total == pytest.approx(
        sum(e.cpu_time_total for e in events if e.name == "Matmul"))


def test_nothing_is_recorded_outside_and_results_do_not_change():
    a, b = gradient.randn(4, 3, requires_grad=True), gradient.randn(3, 2)
    plain = _step(a, b).item()
    with autograd_profiler.profile() as prof:
        profiled = _step(a, b).item()
    _step(a, b)
    assert profiled == plain
    assert len(prof.events()) == 3
    assert autograd_profiler.active is None
    with record_function("idle"):      # no profile: a range costs nothing and records nothing
        _step(a, b)


def test_table_sorting_and_limits():
    a, b = gradient.randn(4, 3, requires_grad=True), gradient.randn(3, 2)
    with autograd_profiler.profile() as prof:
        for _ in range(3):
            _step(a, b).backward()
    table = prof.key_averages().table(sort_by="count", row_limit=3)
    lines = table.splitlines()
    assert "Self CPU %" in lines[1] and "# of Calls" in lines[1]
    assert len(lines) == 3 + 3 + 2       # rules and header, 3 rows, rule and total
    assert lines[3].split()[-1] == "6"    # Matmul: twice a step (forward, backward)
    assert "Self CPU time total" in table
    with pytest.raises(ValueError, match="sort_by"):
        prof.key_averages().table(sort_by="speed")


def test_chrome_trace_and_tensorboard_handler(tmp_path):
    a, b = gradient.randn(4, 3, requires_grad=True), gradient.randn(3, 2)
    with profile(on_trace_ready=tensorboard_trace_handler(str(tmp_path), "worker0")) as prof:
        _step(a, b).backward()
    files = os.listdir(tmp_path)
    assert len(files) == 1 and files[0].startswith("worker0.") and files[0].endswith(
        ".pt.trace.json")
    trace = json.loads((tmp_path / files[0]).read_text())["traceEvents"]
    assert {e["name"] for e in trace} >= {"ProfilerStep#0", "Matmul", "MatmulBackward"}
    assert all(e["ph"] == "X" and e["dur"] >= 0 for e in trace)
    prof.export_chrome_trace(str(tmp_path / "again.json"))
    assert len(json.loads((tmp_path / "again.json").read_text())["traceEvents"]) == len(trace)


@pytest.mark.parametrize("config", [dict(wait=1, warmup=1, active=2),
                                    dict(wait=0, warmup=0, active=1, repeat=3),
                                    dict(wait=2, warmup=1, active=3, repeat=2, skip_first=3),
                                    dict(wait=1, warmup=2, active=1, skip_first_wait=1)])
def test_schedules_give_torchs_actions(config):
    torch = pytest.importorskip("torch")
    ours, theirs = schedule(**config), torch.profiler.schedule(**config)
    assert [ours(s).name for s in range(30)] == [theirs(s).name for s in range(30)]


def test_a_scheduled_profile_hands_each_cycle_on():
    cycles = []
    a, b = gradient.randn(4, 3, requires_grad=True), gradient.randn(3, 2)
    with profile(schedule=schedule(wait=1, warmup=1, active=2, repeat=2),
                 on_trace_ready=lambda p: cycles.append(
                     sorted({e.name for e in p.events() if e.name.startswith("ProfilerStep")}))
                 ) as prof:
        for _ in range(10):
            _step(a, b).backward()
            prof.step()
    assert cycles == [["ProfilerStep#2", "ProfilerStep#3"], ["ProfilerStep#6", "ProfilerStep#7"]]
    matmuls = [e for e in prof.key_averages() if e.key == "Matmul"]
    assert matmuls[0].count == 4          # the last cycle's two steps, forward and backward
    assert schedule(wait=0, warmup=0, active=1)(0) is ProfilerAction.RECORD_AND_SAVE


def test_record_function_decorates_and_profiles_do_not_nest():
    @record_function("my_block")
    def block(x):
        return (x * 2).sum()

    with autograd_profiler.profile() as prof:
        assert block(gradient.ones(3)).item() == 6.0
        with pytest.raises(RuntimeError, match="already recording"):
            autograd_profiler.profile().start()
    ranges = [e for e in prof.events() if e.name == "my_block"]
    assert len(ranges) == 1 and [c.name for c in ranges[0].children] == ["Mul", "Sum"]
    assert np.isfinite(prof.self_cpu_time_total)

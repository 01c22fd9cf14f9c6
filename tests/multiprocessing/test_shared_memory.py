"""Tensors in shared memory (``share_memory_``, ``Module.share_memory``): PyTorch's Hogwild
pattern, a script written once and run with torch's imports and with gradient's, a child process
training the parent's model in place under spawn and fork (the parent's weights are then the
same as torch's); views, queues, what stays a copy, and the files removed at exit."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import pytest

import gradient
import gradient.multiprocessing as mp
from gradient.backends import shared_memory

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SCRIPT = '''
import sys
import numpy as np
{imports}


def train(model, steps, queue):
    rng = np.random.default_rng(1)
    x = torch.tensor(rng.standard_normal((64, 5)), dtype=torch.float32)
    y = torch.tensor(rng.standard_normal((64, 3)), dtype=torch.float32)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for step in range(steps):
        optimizer.zero_grad()
        nn.functional.mse_loss(model(x), y).backward()
        optimizer.step()
    queue.put([p.is_shared() for p in model.parameters()])


if __name__ == "__main__":
    method, out = sys.argv[1], sys.argv[2]
    mp.set_start_method(method, force=True)
    rng = np.random.default_rng(0)
    model = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3))
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.tensor(rng.standard_normal(tuple(p.shape)) * 0.3,
                                 dtype=torch.float32))
    first = [p.detach().numpy().copy() for p in model.parameters()]
    model.share_memory()
    queue = mp.Queue()
    child = mp.Process(target=train, args=(model, 20, queue))
    child.start()
    flags = queue.get(timeout=120)
    child.join()
    np.savez(out, exitcode=child.exitcode, flags=np.array(flags),
             shared=np.array([p.is_shared() for p in model.parameters()]),
             *[p.detach().numpy() for p in model.parameters()],
             **{{f"first_{{i}}": a for i, a in enumerate(first)}})
'''

IMPORTS = {
    "torch": "import torch\nimport torch.nn as nn\nimport torch.multiprocessing as mp",
    "gradient": "import gradient as torch\nimport gradient.nn as nn\n"
                "import gradient.multiprocessing as mp",
}


def _run(tmp_path, lib, method):
    pytest.importorskip("torch") if lib == "torch" else None
    script = tmp_path / f"hogwild_{lib}.py"
    script.write_text(SCRIPT.format(imports=IMPORTS[lib]))
    out = tmp_path / f"{lib}_{method}.npz"
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    subprocess.run([sys.executable, str(script), method, str(out)], check=True, env=env,
                   timeout=300, cwd=tmp_path)
    return np.load(out)


@pytest.mark.parametrize("method", ["spawn", "fork"])
def test_a_child_trains_the_parents_shared_model_in_place_as_torchs(tmp_path, method):
    ours, theirs = _run(tmp_path, "gradient", method), _run(tmp_path, "torch", method)
    for got in (ours, theirs):
        assert got["exitcode"] == 0 and got["flags"].all() and got["shared"].all()
    weights = [f"arr_{i}" for i in range(4)]
    for name in weights:
        # the child's 20 steps reached the parent's weights: torch's, within float32 rounding
        assert not np.array_equal(ours[name], ours["first_" + name[4:]])
        np.testing.assert_allclose(ours[name], theirs[name], rtol=1e-4, atol=1e-5)


def _write_into(t, value, queue):
    t.add_(value)
    queue.put(t)                      # back by handle: the same memory


def test_share_memory_moves_values_in_place_and_queues_send_handles():
    x = gradient.arange(6.0).reshape(2, 3)
    plain = gradient.zeros(3)
    assert not x.is_shared() and not x.untyped_storage().is_shared()
    assert x.share_memory_() is x
    assert x.is_shared() and x.untyped_storage().is_shared() and x[1].is_shared()
    assert x.tolist() == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]
    assert x.share_memory_()._data is x._data            # once shared, left as it is
    base = gradient.zeros(4)
    view = base[1:3].share_memory_()                      # a view: its base's memory, as torch
    view[0] = 5.0
    assert base.is_shared() and base.tolist() == [0.0, 5.0, 0.0, 0.0]
    context = mp.get_context("spawn")
    queue = context.Queue()
    for t, shared in ((x[1], True), (plain, False)):
        child = context.Process(target=_write_into, args=(t, 10.0, queue))
        child.start()
        back = queue.get(timeout=120)
        child.join()
        assert child.exitcode == 0 and back.is_shared() is shared
        if shared:      # the child's write is here, in x and in what came back
            assert x.tolist() == [[0.0, 1.0, 2.0], [13.0, 14.0, 15.0]]
            back.add_(1.0)
            assert x[1].tolist() == [14.0, 15.0, 16.0]
        else:           # a copy went, and one came back
            assert plain.tolist() == [0.0, 0.0, 0.0] and back.tolist() == [10.0] * 3
    p = gradient.nn.Parameter(gradient.ones(2))
    p.grad = gradient.ones(2)
    gradient.nn.Linear(2, 2).share_memory()
    module = gradient.nn.Module()
    module.p = p
    assert module.share_memory() is module and p.is_shared() and p.grad.is_shared()


def _share_and_report(queue):
    t = gradient.ones(4).share_memory_()
    queue.put(shared_memory.handle(t._data)[0])


def test_the_process_that_made_a_shared_tensor_removes_its_file_at_exit():
    context = mp.get_context("spawn")
    queue = context.Queue()
    child = context.Process(target=_share_and_report, args=(queue,))
    child.start()
    path = queue.get(timeout=120)
    child.join()
    assert child.exitcode == 0 and os.path.basename(path).startswith("gradient-")
    assert not os.path.exists(path)


_KILLED = r"""
import os, signal, sys
import gradient
from gradient.backends import shared_memory
t = gradient.ones(4).share_memory_()
print(shared_memory.handle(t._data)[0], flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.skipif(not os.path.isdir("/dev/shm"), reason="no /dev/shm")
def test_a_process_killed_outright_leaves_no_shared_file_behind():
    """SIGKILL runs no exit handler: the resource tracker removes the file (before, every such
    process left its tensors' memory held in /dev/shm)."""
    done = subprocess.run([sys.executable, "-c", _KILLED], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == -9, done.stderr[-2000:]
    path = done.stdout.strip()
    assert os.path.basename(path).startswith("gradient-")
    deadline = time.monotonic() + 30
    while os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not os.path.exists(path)

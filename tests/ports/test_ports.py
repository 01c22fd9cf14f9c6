"""Programs written the way PyTorch users write them (tests/ports/programs) run unchanged with
gradient standing in for torch, and report what they report under PyTorch: each runs in a child
process with real torch, then in another where ``import torch`` gives gradient
(torch_as_gradient), from the same starting weights and data (harness)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROGRAMS = sorted(p.stem for p in (Path(__file__).parent / "programs").glob("*.py")
                  if p.stem != "__init__")
RTOL = 2e-5      # float32 training, a few dozen steps: the libraries' roundings part slowly


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    out = tmp_path_factory.mktemp("ports")
    runs = {}
    for lib in ("torch", "gradient"):       # torch first: it saves the starting weights
        done = subprocess.run([sys.executable, "-m", "tests.ports.harness", lib,
                               str(out / f"{lib}.json"), *PROGRAMS], cwd=ROOT,
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        runs[lib] = json.loads((out / f"{lib}.json").read_text())
    return runs


def _compare(ours, theirs, path="result"):
    if isinstance(theirs, dict):
        assert sorted(ours) == sorted(theirs), path
        for key in theirs:
            _compare(ours[key], theirs[key], f"{path}.{key}")
    elif isinstance(theirs, list):
        assert len(ours) == len(theirs), path
        for i, (a, b) in enumerate(zip(ours, theirs)):
            _compare(a, b, f"{path}[{i}]")
    elif isinstance(theirs, float):
        assert ours == pytest.approx(theirs, rel=RTOL, abs=1e-7), path
    else:
        assert ours == theirs, path


@pytest.mark.parametrize("program", PROGRAMS)
def test_a_ported_program_reports_what_it_reports_under_pytorch(reports, program):
    theirs, ours = reports["torch"][program], reports["gradient"][program]
    assert "ok" in theirs, theirs.get("error")
    assert "ok" in ours, ours.get("error")
    _compare(ours["ok"], theirs["ok"])


def test_the_import_hook_gives_gradients_modules_under_torchs_names():
    child = ("import tests.ports.torch_as_gradient\n"
             "import torch, torch.nn.functional as F, gradient\n"
             "from torch.utils.data import DataLoader\n"
             "from torch.optim.lr_scheduler import StepLR\n"
             "assert torch is gradient and F is gradient.nn.functional\n"
             "assert DataLoader is gradient.utils.data.DataLoader\n"
             "from torch.cuda.amp import autocast, GradScaler, custom_fwd\n"
             "from torch.cpu.amp import autocast as cpu_autocast\n"
             "import torch.compiler, torch.serialization\n"
             "assert GradScaler is gradient.cuda.amp.GradScaler\n"
             "assert not torch.compiler.is_compiling()\n"
             "try:\n"
             "    import torch.no_such_module\n"
             "except ImportError:\n"
             "    print('ok')\n")
    done = subprocess.run([sys.executable, "-c", child], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-3000:]

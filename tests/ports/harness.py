"""What the ported programs share: the same starting weights and data in both runs.

Each program is a module with ``run(ports)`` that builds its model the way PyTorch users do,
passes it to ``ports.start(name, model)`` (the run under real torch saves the weights it drew
through NumPy; the run under gradient loads them, so both start equal), draws its data with
``ports.rng`` (NumPy, the same seed in both runs) and returns the numbers it reports (losses
per step, accuracies). ``python -m tests.ports.harness LIB OUT PROGRAM...`` runs programs
under ``LIB`` ("torch", or "gradient" through :mod:`.torch_as_gradient`), writing their
results to ``OUT`` (JSON) and the starting weights beside it.
"""

import importlib
import json
import sys
import traceback
from pathlib import Path

import numpy as np


class Ports:
    """The run's shared starting points (see the module docstring)."""

    def __init__(self, lib: str, weights_dir: Path, program: str):
        self.lib, self.dir, self.program = lib, weights_dir, program
        self.rng = np.random.default_rng(0)

    def start(self, name: str, model) -> None:
        """Make ``model``'s parameters and buffers the torch run's (saved there, loaded here),
        and seed the library's own generator so what it draws after (dropout masks) is the
        same in every run of that library."""
        import torch
        torch.manual_seed(0)
        path = self.dir / f"{self.program}-{name}.npz"
        if self.lib == "torch":
            np.savez(path, **{k: v.detach().cpu().numpy() for k, v in
                              model.state_dict().items()})
            return
        with np.load(path) as saved:
            model.load_state_dict({k: torch.tensor(saved[k]) for k in saved.files})


def main(lib: str, out: str, programs) -> None:
    if lib == "gradient":
        from . import torch_as_gradient  # noqa: F401  (before anything imports torch)
    results = {}
    import torch
    for program in programs:
        ports = Ports(lib, Path(out).parent, program)
        # the weights a program draws before ports.start are the same in every session, so
        # that a comparison that fails fails again (each session drew new ones)
        torch.manual_seed(0)
        try:
            module = importlib.import_module(f"tests.ports.programs.{program}")
            results[program] = {"ok": module.run(ports)}
        except Exception:   # noqa: BLE001  (reported by the test, with the traceback)
            results[program] = {"error": traceback.format_exc()}
    Path(out).write_text(json.dumps(results))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3:])

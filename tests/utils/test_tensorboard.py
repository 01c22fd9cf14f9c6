"""gradient.utils.tensorboard.SummaryWriter against torch's: the same calls write the same
event directories and the same summaries (protocol buffers compared whole, read back with
TensorBoard's own loader), and what it does not write says so."""

import os
import subprocess
import sys

import numpy as np
import pytest

import gradient

pytest.importorskip("tensorboard")
torch = pytest.importorskip("torch")
from tensorboard.backend.event_processing.event_file_loader import RawEventFileLoader  # noqa: E402
from tensorboard.compat.proto.event_pb2 import Event  # noqa: E402
from torch.utils.tensorboard import SummaryWriter as TorchWriter  # noqa: E402

from gradient.utils.tensorboard import SummaryWriter  # noqa: E402

RNG = np.random.default_rng(0)
WEIGHTS = RNG.standard_normal((16, 8)).astype(np.float32)
PICTURE = RNG.random((3, 6, 5)).astype(np.float32)
BATCH = (RNG.random((11, 1, 4, 3)) * 255).astype(np.uint8)


def write(lib, writer_class, log_dir):
    """One run's summaries, through the library's tensors."""
    with writer_class(log_dir, purge_step=2) as w:
        for step in range(4):
            w.add_scalar("loss/train", lib.tensor(1.0 / (step + 1)), step)
            w.add_scalar("lr", 0.1 * step, step, new_style=True)
            w.add_scalars("acc", {"train": 0.5 + step / 10, "val": lib.tensor(0.4)}, step)
        w.add_histogram("fc.weight", lib.tensor(WEIGHTS), 3)
        w.add_histogram("fc.bias", lib.tensor(WEIGHTS[0]), 3, bins=7, max_bins=3)
        w.add_histogram("flat", np.zeros(5), 3)
        w.add_histogram_raw("raw", 0.0, 2.0, 3, 3.0, 5.0, [1.0, 2.0], [1, 2], 3)
        w.add_image("picture", lib.tensor(PICTURE), 3)
        w.add_image("gray", lib.tensor(PICTURE[0]), 3, dataformats="HW")
        w.add_images("batch", lib.tensor(BATCH), 3)
        w.add_text("note", "**lr** 0.1", 3)
        w.add_hparams({"lr": 0.1, "optimizer": "adam", "layers": 2},
                      {"hparam/accuracy": 0.9}, {"optimizer": ["adam", "sgd"]},
                      run_name="hp", global_step=3)


def events(log_dir):
    """{run directory: [event]}, wall times left out: the records as written (TensorBoard's
    EventFileLoader would rewrite histograms into its newer tensor form)."""
    out = {}
    for root, _, files in os.walk(log_dir):
        for name in files:
            run = os.path.relpath(root, log_dir)
            for record in RawEventFileLoader(os.path.join(root, name)).Load():
                event = Event.FromString(record)
                event.ClearField("wall_time")
                out.setdefault(run, []).append(event.SerializeToString(deterministic=True))
    return out


def test_the_same_calls_write_the_same_events_as_torch(tmp_path):
    write(gradient, SummaryWriter, str(tmp_path / "gradient"))
    write(torch, TorchWriter, str(tmp_path / "torch"))
    ours, theirs = events(tmp_path / "gradient"), events(tmp_path / "torch")
    assert sorted(ours) == sorted(theirs) == [".", "acc_train", "acc_val", "hp"]
    for run in theirs:
        assert ours[run] == theirs[run], run


def test_what_a_dashboard_reads_back(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    with SummaryWriter(tmp_path) as w:
        for step in range(3):
            w.add_scalar("loss", gradient.tensor(2.0 - step), step)
        w.add_histogram("w", gradient.tensor(WEIGHTS).bfloat16(), 2)
    acc = EventAccumulator(str(tmp_path))
    acc.Reload()
    assert [(s.step, s.value) for s in acc.Scalars("loss")] == [(0, 2.0), (1, 1.0), (2, 0.0)]
    histogram = acc.Histograms("w")[0].histogram_value
    assert histogram.num == WEIGHTS.size and sum(histogram.bucket) == WEIGHTS.size


def test_default_directory_and_reopening(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    w = SummaryWriter(comment="_lr0.1")
    assert w.get_logdir().startswith("runs" + os.sep) and w.get_logdir().endswith("_lr0.1")
    w.close()
    w.close()                              # twice is fine
    w.add_scalar("after", 1.0, 0)          # a new file after a close
    w.close()
    assert len(os.listdir(w.get_logdir())) == 2


def test_what_it_does_not_write_says_so(tmp_path):
    with SummaryWriter(tmp_path) as w:
        with pytest.warns(UserWarning, match="no graph"):
            w.add_graph(gradient.nn.Linear(2, 2), gradient.randn(1, 2))
        with pytest.raises(NotImplementedError, match="scalars, histograms"):
            w.add_embedding(gradient.randn(4, 3))
        with pytest.raises(ValueError, match="one number"):
            w.add_scalar("x", gradient.randn(3), 0)
        with pytest.raises(ValueError, match="dataformats"):
            w.add_image("x", gradient.rand(3, 4, 4), dataformats="CH")
        with pytest.raises(TypeError, match="dictionaries"):
            w.add_hparams([("lr", 0.1)], {})


def test_without_tensorboard_the_import_says_what_to_install():
    child = ("import sys; sys.modules['tensorboard'] = None\n"
             "try:\n"
             "    import gradient.utils.tensorboard\n"
             "except ImportError as e:\n"
             "    print(e)\n")
    done = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True,
                          timeout=300)
    assert "pip install tensorboard" in done.stdout, done.stderr[-2000:]

"""examples/char_gpt.py: a tiny config learns, --resume continues bit for bit, --amp bf16 runs."""

import importlib.util
import math
import pathlib
import sys

import numpy as np
import pytest

import gradient

ROOT = pathlib.Path(__file__).resolve().parents[2]

# A small model on a 100 kB slice of the corpus: a few seconds per run.
TINY = ["--n-layer", "1", "--n-head", "2", "--n-embd", "32", "--block-size", "32",
        "--batch-size", "8", "--max-chars", "100000", "--eval-iters", "4", "--lr", "1e-2",
        "--sample-chars", "20", "--quiet"]


@pytest.fixture(scope="module")
def char_gpt():
    """The example as a module (not runpy), so a test can patch its functions."""
    path = ROOT / "examples" / "char_gpt.py"
    spec = importlib.util.spec_from_file_location("char_gpt_example", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[spec.name]


def test_corpus_is_deterministic_and_capped(char_gpt):
    a = char_gpt.stdlib_docstrings(50_000)
    assert len(a) == 50_000 and a == char_gpt.stdlib_docstrings(50_000)
    assert "Return" in a


def test_tiny_config_learns(char_gpt, tmp_path):
    out = char_gpt.main(TINY + ["--steps", "40", "--eval-interval", "40",
                                "--out-dir", str(tmp_path)])
    assert out["initial_loss"] == pytest.approx(math.log(out["vocab_size"]))
    # from ln(vocab) ~ 4.5 at init; 40 steps reach ~3.0 (unigram statistics and more)
    assert out["val_loss"] < out["initial_loss"] - 1.0
    assert out["train_loss"] < out["initial_loss"] - 1.0
    assert len(out["sample"]) == len("Return the ") + 20
    assert (tmp_path / "ckpt.safetensors").exists()  # saved at the last step
    history = out["history"]
    assert history["step"] == list(range(40)) and len(history["loss"]) == 40
    assert history["eval_step"] == [0, 40] and history["val"][-1] == out["val_loss"]
    if out["figure"] is not None:  # None only when matplotlib is not installed
        assert out["figure"] == str(tmp_path / "char_gpt.png")
        assert (tmp_path / "char_gpt.png").stat().st_size > 10_000


class _Killed(Exception):
    pass


def test_resume_continues_bit_for_bit(char_gpt, tmp_path, monkeypatch):
    args = TINY + ["--steps", "16", "--eval-interval", "8", "--ckpt-interval", "8"]
    full = char_gpt.main(args + ["--out-dir", str(tmp_path / "full")])

    # the same run, killed right after its checkpoint at step 8 ...
    save = char_gpt.save_checkpoint

    def save_then_die(path, model, optimizer, scheduler, step, rng, cfg):
        save(path, model, optimizer, scheduler, step, rng, cfg)
        if step == 8:
            raise _Killed

    monkeypatch.setattr(char_gpt, "save_checkpoint", save_then_die)
    with pytest.raises(_Killed):
        char_gpt.main(args + ["--out-dir", str(tmp_path / "part")])
    monkeypatch.undo()
    ckpt_path = tmp_path / "part" / "ckpt.safetensors"
    ckpt = gradient.load(str(ckpt_path))
    assert ckpt["step"] == 8 and set(ckpt) >= {"model", "optimizer", "scheduler", "step", "rng"}

    # ... and continued from it in a fresh call: the same weights, losses and sample, exactly
    resumed = char_gpt.main(args + ["--out-dir", str(tmp_path / "part"),
                                    "--resume", str(ckpt_path)])
    for key in ("train_loss", "val_loss", "last_batch_loss", "sample"):
        assert resumed[key] == full[key], key
    want, got = full["model"].state_dict(), resumed["model"].state_dict()
    assert list(want) == list(got)
    for name in want:
        np.testing.assert_array_equal(got[name].numpy(), want[name].numpy(), err_msg=name)
    # the resumed run really restored the state: a run from scratch differs after 8 steps
    fresh = char_gpt.main(args[:-4] + ["--steps", "8", "--ckpt-interval", "0",
                                       "--out-dir", str(tmp_path / "x")])
    assert fresh["last_batch_loss"] != full["last_batch_loss"]


def test_resume_refuses_another_model(char_gpt, tmp_path):
    args = TINY + ["--steps", "2", "--eval-interval", "2", "--out-dir", str(tmp_path)]
    char_gpt.main(args)
    with pytest.raises(SystemExit, match="same model flags"):
        char_gpt.main(args + ["--n-embd", "16", "--resume", str(tmp_path / "ckpt.safetensors")])


def test_amp_bf16_runs_and_learns(char_gpt, tmp_path):
    out = char_gpt.main(TINY + ["--steps", "30", "--eval-interval", "30", "--amp", "bf16",
                                "--ckpt-interval", "0", "--out-dir", str(tmp_path)])
    assert math.isfinite(out["val_loss"]) and out["val_loss"] < out["initial_loss"] - 0.5
    assert all(p.dtype == gradient.float32 for p in out["model"].parameters())  # master weights
    assert not (tmp_path / "ckpt.safetensors").exists()  # --ckpt-interval 0: none written

"""examples/mnist_like.py: both models learn the 8x8 digits well above chance, reproducibly."""

import importlib.util
import pathlib
import sys

import numpy as np
import pytest

pytest.importorskip("sklearn")

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def mnist_like():
    path = ROOT / "examples" / "mnist_like.py"
    spec = importlib.util.spec_from_file_location("mnist_like_example", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[spec.name]


def test_data_split_is_fixed_stratified_and_scaled(mnist_like):
    x_train, y_train, x_test, y_test = mnist_like.load_data()
    assert x_train.shape == (1437, 1, 8, 8) and x_test.shape == (360, 1, 8, 8)
    assert x_train.dtype == np.float32 and 0.0 <= x_train.min() and x_train.max() == 1.0
    assert np.bincount(y_test, minlength=10).min() >= 35  # every class present in the test set
    again = mnist_like.load_data()
    np.testing.assert_array_equal(again[3], y_test)


def test_fast_run_learns_both_models(mnist_like, tmp_path):
    # 4 epochs each (~2 s) give ~93% for both (the full 30-epoch run ~97.5%); that is far
    # above chance (10%).
    out = mnist_like.main(["--epochs", "4", "--quiet", "--out-dir", str(tmp_path)])
    assert out["mlp_test_acc"] > 0.85, out["mlp_test_acc"]
    assert out["cnn_test_acc"] > 0.85, out["cnn_test_acc"]
    for name in ("mlp", "cnn"):
        losses = out["train_losses"][name]
        assert len(losses) == 4 and losses[-1] < 0.5 * losses[0]
    if out["figure"] is not None:  # None only when matplotlib is not installed
        assert pathlib.Path(out["figure"]) == tmp_path / "mnist_like.png"
        assert (tmp_path / "mnist_like.png").stat().st_size > 10_000


def test_same_seed_same_losses(mnist_like):
    args = ["--epochs", "2", "--models", "mlp", "--quiet", "--no-figure"]
    a, b = mnist_like.main(args), mnist_like.main(args)
    assert a["train_losses"] == b["train_losses"] and a["mlp_test_acc"] == b["mlp_test_acc"]
    c = mnist_like.main(args + ["--seed", "1"])
    assert c["train_losses"] != a["train_losses"]


def test_unknown_model_is_refused(mnist_like):
    with pytest.raises(SystemExit, match="--models"):
        mnist_like.main(["--models", "resnet", "--quiet"])

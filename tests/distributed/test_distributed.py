"""gradient.distributed on real MPI ranks: collectives on 2 and 3 ranks against what they must
give, DistributedDataParallel on 2 ranks (each on half the batch) against one process on the
whole batch, and a rank that fails or hangs making the others stop with an error."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

import gradient
import gradient.distributed as dist
from gradient.errors import DistributedError

pytest.importorskip("mpi4py", reason="gradient.distributed needs mpi4py (gradient[distributed])")

from .worker import sync_bn, train  # noqa: E402

WORKER = os.path.join(os.path.dirname(__file__), "worker.py")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _launch(case, n, tmp_path, timeout=180, env=None):
    out = str(tmp_path / case)
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "gradient", "run", "-n", str(n), WORKER, case,
                           out], capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                          env={**os.environ, "OMP_NUM_THREADS": "1",
                               "OPENBLAS_NUM_THREADS": "1", **(env or {})})
    return proc, time.monotonic() - start, out


def _results(case, n, tmp_path, env=None):
    proc, _, out = _launch(case, n, tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return [dict(np.load(f"{out}.rank{r}.npz")) for r in range(n)]


@pytest.mark.parametrize("n,backend", [(2, "auto"), (3, "mpi")])
def test_collectives(tmp_path, n, backend):
    """("auto" is NCCL where the machine's GPUs can be used; these tensors are on the CPU, so
    MPI moves them either way.)"""
    from gradient.distributed.nccl import nccl_unavailable
    ranks = _results("collectives", n, tmp_path, {"GRADIENT_TEST_DIST_BACKEND": backend})
    expected = "nccl" if backend == "auto" and not nccl_unavailable() else "mpi"
    assert [str(r.pop("backend")) for r in ranks] == [expected] * n
    _check_collectives(ranks, n)


def _check_collectives(ranks, n):
    values = np.array([[r + 1.0, 2.0 * r] for r in range(n)])
    expected = {"all_reduce_SUM": values.sum(0), "all_reduce_AVG": values.mean(0),
                "all_reduce_MAX": values.max(0), "all_reduce_MIN": values.min(0),
                "all_reduce_PRODUCT": values.prod(0), "broadcast": np.full(3, n - 1.0),
                "all_gather": np.array([[r, r * 10.0] for r in range(n)]),
                "all_gather_into_tensor": np.array([[r, -r * 1.0] for r in range(n)])}
    whole = sum(np.arange(2 * n, dtype=np.float32) * (r + 1) for r in range(n))
    for rank, got in enumerate(ranks):
        for name, value in expected.items():
            np.testing.assert_allclose(got[name], value, rtol=1e-12, err_msg=name)
        np.testing.assert_array_equal(got["reduce_scatter_tensor"], whole[2 * rank:2 * rank + 2])
        if n > 1:
            np.testing.assert_array_equal(got["ring"],
                                          np.full(3, 7.0 + (rank - 1 if rank else n - 1)))


@pytest.mark.parametrize("n", [2, 3])
def test_rooted_and_object_collectives(tmp_path, n):
    ranks = _results("rooted_and_objects", n, tmp_path)
    root = n - 1
    values = np.array([[r + 1.0, -2.0 * r] for r in range(n)])
    for rank, got in enumerate(ranks):
        assert str(got["backend"]) == "mpi"
        for op, value in (("SUM", values.sum(0)), ("MAX", values.max(0)),
                          ("AVG", values.mean(0))):
            expected = value if rank == root else values[rank]    # only the root's changes
            np.testing.assert_allclose(got[f"reduce_{op}"], expected, rtol=1e-12, err_msg=op)
        assert ("gather" in got) == (rank == root)
        np.testing.assert_array_equal(got["scatter"], np.arange(4) + 10 * rank)
        np.testing.assert_array_equal(got["all_to_all_single"],
                                      [100 * r + 2 * rank + i for r in range(n) for i in (0, 1)])
        np.testing.assert_array_equal(got["all_to_all_single_uneven"],
                                      [[r, rank] for r in range(n) for _ in range(rank + 1)])
        np.testing.assert_array_equal(got["all_to_all"],
                                      [r * 10 + rank for r in range(n) for _ in range(r + 1)])
        assert [json.loads(s) for s in got["all_gather_object"]] == [
            {"rank": r, "name": "r" * (r + 1)} for r in range(n)]
        np.testing.assert_array_equal(got["all_gather_object_tensor"], np.ones((n, 2)))
        assert json.loads(str(got["broadcast_object_list"])) == [f"from {root}", root, None]
        assert json.loads(str(got["scatter_object_list"])) == {"for": rank}
    np.testing.assert_array_equal(ranks[root]["gather"],
                                  np.stack([np.full((2, 3), float(r)) for r in range(n)]))
    assert json.loads(str(ranks[root]["gather_object"])) == [["rank", r, [r] * r]
                                                              for r in range(n)]


def test_rooted_collectives_refuse_a_list_on_the_wrong_rank():
    """A group of one (no launcher): the list is the root's, so rank 0 must give it."""
    dist.init_process_group("mpi")
    try:
        with pytest.raises(ValueError, match="must give gather_list"):
            dist.gather(gradient.ones(2), None, dst=0)
        with pytest.raises(DistributedError, match="like the rank's tensor"):
            dist.gather(gradient.ones(2), [gradient.ones(3)], dst=0)
        with pytest.raises(DistributedError, match="split sizes"):
            dist.all_to_all_single(gradient.zeros(2), gradient.ones(2), [1], [3])
        with pytest.raises(DistributedError, match="cannot be pickled"):
            dist.all_gather_object([None], lambda: 0)
        found = [None]
        dist.all_gather_object(found, {"alone": True})
        assert found == [{"alone": True}] and dist.get_backend() == "mpi"
        assert dist.group.WORLD is dist.get_group()
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("case,dtype,tol", [
    ("ddp", gradient.float64, 1e-10), ("ddp_float32", gradient.float32, 1e-6),
    ("ddp_accumulate", gradient.float64, 1e-10), ("ddp_small_buckets", gradient.float64, 1e-10),
    ("ddp_unused", gradient.float64, 1e-10), ("zero", gradient.float64, 1e-10)])
def test_ddp_on_two_ranks_equals_one_process(tmp_path, case, dtype, tol):
    kwargs = {"ddp_accumulate": {"accumulate": 2}, "ddp_unused": {"unused": True},
              "zero": {"adam": True}}.get(case, {})
    alone = train(0, 1, dtype, **kwargs)
    elements = sum(value.size for value in alone.values())
    for rank in _results(case, 2, tmp_path):
        rank.pop("state_elements", None)
        if case != "zero":   # every backward outside no_sync averaged each bucket once
            syncs, reduces, nbytes, buckets, timed = rank.pop("comm_stats")
            assert (syncs, reduces, nbytes, timed) == (4, 4 * buckets, 4 * elements * dtype.itemsize, 1)
        assert rank.keys() == alone.keys()
        for name, value in alone.items():
            np.testing.assert_allclose(rank[name], value, rtol=tol, atol=tol, err_msg=name)


@pytest.mark.parametrize("n", [2, 3])
def test_sync_batchnorm_on_n_ranks_equals_batchnorm_on_the_whole_batch(tmp_path, n):
    """Each rank normalises its rows with the whole batch's statistics: outputs and input
    gradients are the rows of plain BatchNorm's on the whole batch, the affine gradients sum
    to its, and every rank keeps its running statistics."""
    whole = sync_bn(0, 1, layer=gradient.nn.BatchNorm1d(3).double())
    ranks = _results("sync_bn", n, tmp_path)
    for name in ("y0", "x_grad0", "y1", "x_grad1"):
        np.testing.assert_allclose(np.concatenate([r[name] for r in ranks]), whole[name],
                                   rtol=1e-10, atol=1e-12, err_msg=name)
    for rank in ranks:
        for name in ("affine_grads", "running_mean", "running_var"):
            np.testing.assert_allclose(rank[name], whole[name], rtol=1e-10, err_msg=name)


def test_zero_on_three_ranks_shards_the_state_and_equals_one_process(tmp_path):
    alone = train(0, 1, gradient.float64, adam=True)
    ranks = _results("zero", 3, tmp_path)
    held = [int(r.pop("state_elements")) for r in ranks]
    total = sum(v.size for v in alone.values())
    assert sum(held) == total and all(0 < h < total for h in held), held   # each element once
    for rank in ranks:
        for name, value in alone.items():
            np.testing.assert_allclose(rank[name], value, rtol=1e-10, atol=1e-10, err_msg=name)


def test_zero_checkpoints_hold_the_whole_optimizer_state(tmp_path):
    """consolidate_state_dict + state_dict on 2 ranks give the plain AdamW's state after the
    same steps; 3 ranks load the plain optimizer's state (another partition) and train on as
    the plain optimizer does."""
    from .worker import zero_checkpoint
    alone = zero_checkpoint(0, 1)
    state = {k: v for k, v in alone.items() if k.startswith("state_")}
    plain = tmp_path / "plain_state.npz"
    np.savez(plain, param_groups=alone.pop("param_groups"), **state)
    env = {"PLAIN_STATE": str(plain)}
    two = _results("zero_checkpoint", 2, tmp_path, env)
    assert "refused_elsewhere" in two[0]
    assert str(two[1].pop("param_groups")) == str(np.load(plain)["param_groups"])
    for key, value in state.items():
        np.testing.assert_allclose(two[1][key], value, rtol=1e-10, atol=1e-12, err_msg=key)
    for ranks in (two, _results("zero_checkpoint", 3, tmp_path, env)):
        for rank in ranks:
            for name, value in alone.items():
                if not name.startswith("state_"):
                    np.testing.assert_allclose(rank[name], value, rtol=1e-10, atol=1e-12,
                                               err_msg=name)


def test_tensor_parallel_layers_on_two_ranks_equal_the_unsplit_ones(tmp_path):
    from .worker import tensor_parallel_inputs
    fc1, fc2, x, x2 = tensor_parallel_inputs()
    y = fc2(gradient.nn.functional.gelu(fc1(x)))
    (y * y).sum().backward()
    mlp = {"up": (fc1.weight.grad.numpy().copy(), fc1.bias.grad.numpy().copy()),
           "down": (fc2.weight.grad.numpy().copy(), fc2.bias.grad.numpy().copy())}
    fc1.zero_grad(), fc2.zero_grad()
    z = fc1(x2)
    w = fc2(z)
    (w.sin().sum() + z.square().sum()).backward()
    gathered = {"wide": (fc1.weight.grad.numpy(), fc1.bias.grad.numpy()),
                "full_in": (fc2.weight.grad.numpy(), fc2.bias.grad.numpy())}
    for r, got in enumerate(_results("tensor_parallel", 2, tmp_path)):
        for name, value in (("y", y), ("x_grad", x.grad), ("z", z), ("w", w),
                            ("x2_grad", x2.grad)):
            np.testing.assert_allclose(got[name], value.detach().numpy(), rtol=1e-12,
                                       atol=1e-12, err_msg=name)
        for name, (weight, bias) in {**mlp, **gathered}.items():
            if name in ("up", "wide"):        # rows r*8 .. r*8+7 of the weight and bias
                weight, bias = weight[r * 8:(r + 1) * 8], bias[r * 8:(r + 1) * 8]
            else:                             # columns r*8 .. r*8+7; the whole bias
                weight = weight[:, r * 8:(r + 1) * 8]
            np.testing.assert_allclose(got[f"{name}_weight_grad"], weight, rtol=1e-12,
                                       atol=1e-12, err_msg=name)
            np.testing.assert_allclose(got[f"{name}_bias_grad"], bias, rtol=1e-12,
                                       atol=1e-12, err_msg=name)


@pytest.mark.parametrize("n", [2, 3])
def test_a_vocabulary_parallel_embedding_equals_the_whole_table(tmp_path, n):
    from .worker import embedding_inputs
    table, ids, head = embedding_inputs()
    rows = table(ids)
    ((rows @ head).tanh().sum()).backward()
    part = 12 // n
    for r, got in enumerate(_results("vocab_parallel", n, tmp_path)):
        assert int(got["start"]) == r * part
        np.testing.assert_allclose(got["rows"], rows.detach().numpy(), rtol=1e-12, atol=1e-12)
        # this rank's rows of the table's gradient (the padding row's stays zero)
        np.testing.assert_allclose(got["weight_grad"],
                                   table.weight.grad.numpy()[r * part:(r + 1) * part],
                                   rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", ["pipeline", "pipeline_1f1b"])
@pytest.mark.parametrize("n", [2, 3])
def test_a_pipeline_on_n_ranks_trains_as_one_process(tmp_path, n, case):
    from .worker import pipeline_model
    model, x, y = pipeline_model()
    opt = gradient.optim.SGD(model.parameters(), lr=0.5)
    expected = {}
    for step in range(2):
        opt.zero_grad()
        output = model(x)
        losses = [gradient.nn.functional.cross_entropy(model(xb), yb)
                  for xb, yb in zip(x.chunk(4), y.chunk(4))]
        gradient.nn.functional.cross_entropy(output, y).backward()   # = the losses' mean
        expected[f"losses{step}"] = np.array([float(v) for v in losses])
        expected[f"output{step}"] = output.detach().numpy()
        opt.step()
    for i, layer in enumerate(model):
        for name, p in layer.named_parameters():
            expected[f"{i}.{name}"] = p.detach().numpy()
    ranks = _results(case, n, tmp_path)
    got = {k: v for r in ranks for k, v in r.items()}
    assert got.keys() == expected.keys()
    for name, value in expected.items():
        np.testing.assert_allclose(got[name], value, rtol=1e-10, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("tied", [False, True])
def test_a_llama_sharded_across_two_ranks_equals_the_whole_model(tmp_path, tied):
    from .worker import llama_inputs, llama_run
    expected = llama_run(*llama_inputs(tied))
    n = 2
    for r, got in enumerate(_results("shard_llama_tied" if tied else "shard_llama", n,
                                     tmp_path)):
        assert got.keys() == expected.keys()
        for name, whole in expected.items():
            part = got[name]
            if part.shape != whole.shape:     # this rank's rows or columns of the parameter
                axis = 0 if part.shape[0] != whole.shape[0] else 1
                k = part.shape[axis]
                whole = np.take(whole, range(r * k, (r + 1) * k), axis=axis)
            np.testing.assert_allclose(part, whole, rtol=1e-10, atol=1e-12, err_msg=name)


def test_a_rank_that_raises_stops_the_others(tmp_path):
    proc, seconds, _ = _launch("fail", 2, tmp_path, timeout=120)
    assert proc.returncode != 0 and seconds < 60
    assert "RuntimeError: rank 1 fails on purpose" in proc.stderr
    assert "rank 1 failed; stopping every rank" in proc.stderr


def test_a_rank_that_hangs_times_out_the_others(tmp_path):
    proc, seconds, _ = _launch("hang", 2, tmp_path, timeout=120,
                               env={"GRADIENT_DISTRIBUTED_TIMEOUT": "3"})
    assert proc.returncode != 0 and seconds < 60
    assert "barrier did not complete within 3 s" in proc.stderr


def test_without_a_launcher_init_says_how_to_launch():
    code = ("import gradient.distributed as d\n"
            "try:\n    d.init_process_group('mpi', world_size=2)\n"
            "except Exception as e:\n    print(type(e).__name__, e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, cwd=ROOT).stdout
    assert "DistributedError" in out and "gradient run -n 2 script.py" in out


def test_the_nccl_backend_says_why_it_cannot_run():
    from gradient.distributed.nccl import nccl_unavailable
    why = nccl_unavailable()
    if why is None:
        pytest.skip("NCCL can run here (the gpu tests use it)")
    with pytest.raises(DistributedError, match="'nccl' backend cannot run here: .*backend='mpi'"):
        dist.init_process_group("nccl")
    assert not dist.is_initialized()


@pytest.mark.gpu
@pytest.mark.skipif(not gradient.cuda.is_available(), reason="no CUDA device (or no CuPy)")
@pytest.mark.parametrize("case", ["collectives", "ddp"])
def test_nccl_on_one_gpu(tmp_path, case):
    """NCCL refuses two ranks on one GPU, so one rank: the NCCL path runs end to end."""
    from gradient.distributed.nccl import nccl_unavailable
    if nccl_unavailable():
        pytest.skip(nccl_unavailable())
    env = {"GRADIENT_TEST_DIST_BACKEND": "nccl", "GRADIENT_TEST_DIST_DEVICE": "cuda"}
    ranks = _results(case, 1, tmp_path, env)
    if case == "collectives":
        assert str(ranks[0].pop("backend")) == "nccl"
        _check_collectives(ranks, 1)
    else:
        alone = train(0, 1)
        ranks[0].pop("comm_stats")
        for name, value in alone.items():
            np.testing.assert_allclose(ranks[0][name], value, rtol=1e-10, err_msg=name)


def test_collectives_need_a_process_group():
    if dist.is_initialized():
        pytest.skip("a process group is initialised in this process")
    with pytest.raises(DistributedError, match="init_process_group"):
        dist.all_reduce(gradient.ones(2))


@pytest.mark.parametrize("stages,n", [(2, 4), (3, 4), (4, 2)])
def test_1f1b_runs_every_micro_batch_once_holding_few_at_a_time(stages, n):
    from gradient.distributed.pipelining import Schedule1F1B

    class Stage:                     # the schedule's order needs only the stage's place
        num_stages = stages
    for index in range(stages):
        Stage.stage_index = index
        schedule = Schedule1F1B.__new__(Schedule1F1B)
        schedule.stage, schedule.n = Stage, n
        order = schedule._order()
        assert sorted(order) == sorted([("F", k) for k in range(n)] + [("B", k) for k in range(n)])
        held, most = 0, 0
        for kind, k in order:
            assert kind == "F" or ("F", k) in order[:order.index((kind, k))]
            held += 1 if kind == "F" else -1
            most = max(most, held)
        assert most <= min(n, stages - index)          # GPipe holds all n
        assert [k for kind, k in order if kind == "B"] == list(range(n))


def test_ddp_buckets_start_with_a_small_one_and_keep_one_dtype_each():
    """PyTorch's bucketing: the parameters in reverse order, a first bucket of about 1 MiB so
    that communication starts early in backward, then buckets of the cap, one dtype each."""
    from gradient.nn.parallel.distributed import _buckets
    params = [gradient.zeros(n, dtype=dt) for n, dt in
              [(300_000, gradient.float32), (100_000, gradient.float32), (200_000, gradient.float32),
               (50_000, gradient.float64), (200_000, gradient.float32), (210_000, gradient.float32)]]
    buckets = _buckets(params, cap_bytes=2 * 2**20, first_cap_bytes=2**20)
    assert [[p.numel() for p in b] for b in buckets] == [
        [210_000], [200_000], [50_000], [200_000, 100_000], [300_000]]


@pytest.mark.parametrize("euid, expected", [(0, "1"), (1000, None)])
def test_the_launcher_lets_open_mpi_run_as_root(monkeypatch, euid, expected):
    """Open MPI's mpiexec refuses to start as root without its two consent variables (the GPU
    machines and most containers run as root); the launcher sets them there, keeps a user's
    own values, and leaves an ordinary user's environment alone."""
    from gradient.distributed import launch
    monkeypatch.delenv("OMPI_ALLOW_RUN_AS_ROOT", raising=False)
    monkeypatch.delenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", raising=False)
    monkeypatch.setattr(launch.os, "geteuid", lambda: euid)
    env = launch.launch_environment()
    assert env.get("OMPI_ALLOW_RUN_AS_ROOT") == expected
    assert env.get("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM") == expected
    monkeypatch.setenv("OMPI_ALLOW_RUN_AS_ROOT", "0")
    assert launch.launch_environment()["OMPI_ALLOW_RUN_AS_ROOT"] == "0"

"""What the distributed tests run on each rank (``gradient run -n N worker.py CASE OUT``): one
case of collectives or training, its results written to ``OUT.rankR.npz`` for the test to
compare with one process. ``GRADIENT_TEST_DIST_BACKEND`` (default ``mpi``) picks the process
group's backend and ``GRADIENT_TEST_DIST_DEVICE`` (default ``cpu``) the tensors' device."""

import json
import os
import sys

import numpy as np

import gradient
import gradient.distributed as dist
from gradient import nn

BACKEND = os.environ.get("GRADIENT_TEST_DIST_BACKEND", "mpi")
DEVICE = os.environ.get("GRADIENT_TEST_DIST_DEVICE", "cpu")


def collectives(rank, size):
    out = {"backend": np.array(dist.get_group().backend)}
    t = gradient.tensor([float(rank + 1), 2.0 * rank], dtype=gradient.float64, device=DEVICE)
    for op in ("SUM", "AVG", "MAX", "MIN", "PRODUCT"):
        x = t.clone()
        dist.all_reduce(x, op=getattr(dist.ReduceOp, op))
        out[f"all_reduce_{op}"] = x.numpy()
    b = gradient.full((3,), float(rank), device=DEVICE)
    dist.broadcast(b, src=size - 1)
    out["broadcast"] = b.numpy()
    parts = [gradient.zeros(2, device=DEVICE) for _ in range(size)]
    dist.all_gather(parts, gradient.tensor([rank, rank * 10.0], device=DEVICE))
    out["all_gather"] = np.stack([p.numpy() for p in parts])
    whole = gradient.zeros(size, 2, device=DEVICE)
    dist.all_gather_into_tensor(whole, gradient.tensor([[rank, -rank * 1.0]], device=DEVICE))
    out["all_gather_into_tensor"] = whole.numpy()
    mine = gradient.zeros(2, device=DEVICE)
    dist.reduce_scatter_tensor(mine, gradient.arange(2 * size, dtype=gradient.float32,
                                                     device=DEVICE) * (rank + 1))
    out["reduce_scatter_tensor"] = mine.numpy()
    work = dist.all_reduce(gradient.ones(4, device=DEVICE), async_op=True)
    work.wait()
    if size > 1:   # a ring of send/recv
        got = gradient.zeros(3, device=DEVICE)
        if rank == 0:
            dist.send(gradient.full((3,), 7.0, device=DEVICE), 1)
            dist.recv(got, size - 1)
        else:
            dist.recv(got, rank - 1)
            dist.send(got + 1, (rank + 1) % size)
        out["ring"] = got.numpy()
    dist.barrier()
    return out


def rooted_and_objects(rank, size):
    """reduce, gather, scatter, all_to_all(_single) and the object collectives, rooted at the
    last rank where a root is taken (not rank 0: a root argument that were ignored shows)."""
    root = size - 1
    out = {"backend": np.array(dist.get_backend())}
    for op in ("SUM", "MAX", "AVG"):
        x = gradient.tensor([rank + 1.0, -2.0 * rank], dtype=gradient.float64, device=DEVICE)
        dist.reduce(x, dst=root, op=getattr(dist.ReduceOp, op))
        out[f"reduce_{op}"] = x.numpy()
    parts = [gradient.zeros(2, 3, device=DEVICE) for _ in range(size)] if rank == root else None
    dist.gather(gradient.full((2, 3), float(rank), device=DEVICE), parts, dst=root)
    if rank == root:
        out["gather"] = np.stack([p.numpy() for p in parts])
    mine = gradient.zeros(4, dtype=gradient.int64, device=DEVICE)
    pieces = ([gradient.arange(4, device=DEVICE) + 10 * r for r in range(size)]
              if rank == root else None)
    dist.scatter(mine, pieces, src=root)
    out["scatter"] = mine.numpy()
    # equal splits: rank r sends rows [2j, 2j+2) (valued 100 r + row) to rank j
    send = gradient.arange(2 * size, dtype=gradient.float32, device=DEVICE) + 100 * rank
    got = gradient.zeros(2 * size, dtype=gradient.float32, device=DEVICE)
    dist.all_to_all_single(got, send)
    out["all_to_all_single"] = got.numpy()
    # uneven splits: rank r sends j + 1 rows to rank j; rank j gets j + 1 rows from each
    send = gradient.tensor([[float(rank), float(j)] for j in range(size) for _ in range(j + 1)],
                           device=DEVICE)
    got = gradient.zeros((rank + 1) * size, 2, device=DEVICE)
    work = dist.all_to_all_single(got, send, [rank + 1] * size, [j + 1 for j in range(size)],
                                  async_op=True)
    work.wait()
    out["all_to_all_single_uneven"] = got.numpy()
    outs = [gradient.zeros(j + 1, dtype=gradient.int32, device=DEVICE) for j in range(size)]
    ins = [gradient.full((rank + 1,), rank * 10 + j, dtype=gradient.int32, device=DEVICE)
           for j in range(size)]
    dist.all_to_all(outs, ins)
    out["all_to_all"] = np.concatenate([o.numpy() for o in outs])
    found = [None] * size
    dist.all_gather_object(found, {"rank": rank, "name": "r" * (rank + 1), "t": gradient.ones(2)})
    out["all_gather_object"] = np.array([json.dumps({k: v for k, v in f.items() if k != "t"})
                                         for f in found])
    out["all_gather_object_tensor"] = np.stack([f["t"].numpy() for f in found])
    objects = [f"from {rank}", rank, None] if rank == root else [None, None, None]
    dist.broadcast_object_list(objects, src=root)
    out["broadcast_object_list"] = np.array(json.dumps(objects))
    gathered = [None] * size if rank == root else None
    dist.gather_object(("rank", rank, [rank] * rank), gathered, dst=root)
    if rank == root:
        out["gather_object"] = np.array(json.dumps(gathered))
    one = [None]
    dist.scatter_object_list(one, [{"for": r} for r in range(size)] if rank == root else None,
                             src=root)
    out["scatter_object_list"] = np.array(json.dumps(one[0]))
    return out


class Net(nn.Module):
    def __init__(self, unused: bool):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(8, 32), nn.Tanh(), nn.Linear(32, 32), nn.Tanh(),
                                  nn.Linear(32, 4))
        self.extra = nn.Linear(3, 3) if unused else None   # takes no part in the forward

    def forward(self, x):
        return self.body(x)


def model_and_data(dtype, unused=False):
    gradient.manual_seed(0)
    model = Net(unused).to(dtype).to(DEVICE)
    rng = np.random.default_rng(1)
    x = gradient.from_numpy(rng.standard_normal((24, 8))).to(dtype).to(DEVICE)
    y = gradient.from_numpy(rng.integers(0, 4, 24)).to(DEVICE)
    return model, x, y


def train(rank, size, dtype=gradient.float64, accumulate=1, bucket_cap_mb=25, unused=False,
          adam=False):
    """Steps of SGD (or AdamW with a decaying learning rate, ``adam``: on several ranks its
    state sharded by ZeroRedundancyOptimizer) on ``size`` ranks, each on its share of the
    batch (``accumulate`` micro-batches, all but the last inside no_sync)."""
    model, x, y = model_and_data(dtype, unused)
    distributed = size > 1 or dist.is_initialized()
    if distributed:
        model = nn.parallel.DistributedDataParallel(model, bucket_cap_mb=bucket_cap_mb,
                                                    find_unused_parameters=unused)
    if adam:
        groups = [{"params": list(model.parameters())[:2], "weight_decay": 0.0},
                  {"params": list(model.parameters())[2:]}]
        if distributed:
            from gradient.distributed.optim import ZeroRedundancyOptimizer
            opt = ZeroRedundancyOptimizer(groups, optimizer_class=gradient.optim.AdamW,
                                          lr=0.05, weight_decay=0.1)
        else:
            opt = gradient.optim.AdamW(groups, lr=0.05, weight_decay=0.1)
        schedule = gradient.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    else:
        opt = gradient.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        schedule = None
    shard = len(x) // size
    xs, ys = x[rank * shard:(rank + 1) * shard], y[rank * shard:(rank + 1) * shard]
    micro = len(xs) // accumulate
    for _ in range(4):
        opt.zero_grad()
        for k in range(accumulate):
            xb, yb = xs[k * micro:(k + 1) * micro], ys[k * micro:(k + 1) * micro]
            step = (model.no_sync() if k < accumulate - 1 and hasattr(model, "no_sync")
                    else _nothing())
            with step:
                loss = nn.functional.cross_entropy(model(xb), yb) / accumulate
                loss.backward()
        opt.step()
        if schedule is not None:
            schedule.step()
    inner = model.module if hasattr(model, "module") else model
    out = {name: p.detach().numpy() for name, p in inner.named_parameters()}
    if distributed and not adam:   # what the averaging cost: 4 syncs of every bucket
        stats = model.comm_stats()
        out["comm_stats"] = np.array([stats["syncs"], stats["all_reduces"], stats["bytes_reduced"],
                                      len(model._buckets), stats["exposed_comm_s"] >= 0])
    if adam and distributed:   # the elements whose optimizer state this rank holds
        out["state_elements"] = np.array(sum(
            p.numel() for p in inner.parameters() if p in opt.optim.state))
    return out


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def tensor_parallel(rank, size):
    """An MLP split by columns then rows, and a column-parallel layer that gathers its output:
    outputs and gradients, for the test to compare with the unsplit layers."""
    from gradient.nn.parallel import ColumnParallelLinear, RowParallelLinear
    fc1, fc2, x, x2 = tensor_parallel_inputs()
    out = {}
    if size > 1:
        up = ColumnParallelLinear.from_linear(fc1, gather_output=False)
        down = RowParallelLinear.from_linear(fc2, input_is_parallel=True)
        wide = ColumnParallelLinear.from_linear(fc1, gather_output=True)
        full_in = RowParallelLinear.from_linear(fc2)               # slices its input itself
    else:
        up = down = wide = full_in = None
    y = down(nn.functional.gelu(up(x))) if up else fc2(nn.functional.gelu(fc1(x)))
    (y * y).sum().backward()
    z = wide(x2) if wide else fc1(x2)
    w = full_in(z) if full_in else fc2(z)
    (w.sin().sum() + z.square().sum()).backward()
    out.update(y=y.detach().numpy(), x_grad=x.grad.numpy(), z=z.detach().numpy(),
               w=w.detach().numpy(), x2_grad=x2.grad.numpy())
    layers = (up, down, wide, full_in) if up else (fc1, fc2, fc1, fc2)
    for name, layer in zip(("up", "down", "wide", "full_in"), layers):
        out[f"{name}_weight_grad"] = layer.weight.grad.numpy()
        out[f"{name}_bias_grad"] = layer.bias.grad.numpy()
    return out


def tensor_parallel_inputs():
    gradient.manual_seed(0)
    fc1, fc2 = nn.Linear(8, 16).double(), nn.Linear(16, 6).double()
    x = gradient.randn(5, 8, dtype=gradient.float64, requires_grad=True)
    x2 = gradient.randn(3, 8, dtype=gradient.float64, requires_grad=True)
    return fc1, fc2, x, x2


def embedding_inputs():
    gradient.manual_seed(2)
    table = nn.Embedding(12, 5, padding_idx=7).double()
    ids = gradient.tensor([[0, 5, 6, 11], [7, 3, 6, 9]])
    head = gradient.randn(5, 3, dtype=gradient.float64)
    return table, ids, head


def vocab_parallel(rank, size):
    """A vocabulary-parallel embedding's lookup, and its rows' gradient, on this rank."""
    from gradient.nn.parallel import VocabParallelEmbedding
    table, ids, head = embedding_inputs()
    layer = VocabParallelEmbedding.from_embedding(table)
    rows = layer(ids)
    ((rows @ head).tanh().sum()).backward()
    return {"rows": rows.detach().numpy(), "weight_grad": layer.weight.grad.numpy(),
            "start": np.array(layer.start)}


def pipeline_model():
    gradient.manual_seed(3)
    layers = [nn.Linear(8, 32), nn.Tanh(), nn.Linear(32, 32), nn.Tanh(), nn.Linear(32, 16),
              nn.Tanh(), nn.Linear(16, 4)]
    rng = np.random.default_rng(4)
    x = gradient.from_numpy(rng.standard_normal((24, 8)))
    y = gradient.from_numpy(rng.integers(0, 4, 24))
    return nn.Sequential(*layers).double(), x, y


#: where the layers split into 2 and 3 stages
PIPELINE_SPLITS = {1: [0, 7], 2: [0, 4, 7], 3: [0, 2, 4, 7]}


def pipeline(rank, size, schedule_class="ScheduleGPipe"):
    """Two steps of SGD through a schedule of 4 micro-batches, this rank one stage: its
    parameters after, the last stage's losses and outputs."""
    from gradient.distributed import pipelining
    model, x, y = pipeline_model()
    cut = PIPELINE_SPLITS[size]
    stage = nn.Sequential(*list(model)[cut[rank]:cut[rank + 1]])
    schedule = getattr(pipelining, schedule_class)(pipelining.PipelineStage(stage, rank, size),
                                                   4, loss_fn=nn.functional.cross_entropy)
    opt = gradient.optim.SGD(stage.parameters(), lr=0.5)
    out = {}
    for step in range(2):
        opt.zero_grad()
        if rank == 0:
            schedule.step(x)
        elif rank == size - 1:
            losses = []
            output = schedule.step(target=y, losses=losses)
            out[f"losses{step}"] = np.array([float(v) for v in losses])
            out[f"output{step}"] = output.numpy()
        else:
            schedule.step()
        opt.step()
    for i, layer in enumerate(model):
        if cut[rank] <= i < cut[rank + 1]:
            for name, p in layer.named_parameters():
                out[f"{i}.{name}"] = p.detach().numpy()
    return out


def llama_inputs(tied):
    from gradient.models import LlamaConfig, LlamaForCausalLM
    gradient.manual_seed(5)
    config = LlamaConfig(vocab_size=48, hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         head_dim=8, max_position_embeddings=64, tie_word_embeddings=tied)
    model = LlamaForCausalLM(config).double()
    ids = gradient.from_numpy(np.random.default_rng(6).integers(0, 48, (2, 9)))
    return model, ids


def llama_run(model, ids):
    out = model(ids, labels=ids)
    out.loss.backward()
    result = {"logits": out.logits.detach().numpy(), "loss": out.loss.detach().numpy()}
    result.update({f"grad.{name}": p.grad.numpy() for name, p in model.named_parameters()})
    return result


def shard(rank, size, tied):
    """A tensor-parallel LLaMA's logits, loss and its parameters' gradients on this rank."""
    from gradient.models.tensor_parallel import shard_llama
    model, ids = llama_inputs(tied)
    return llama_run(shard_llama(model), ids)


def zero_checkpoint(rank, size, steps=(2, 2)):
    """AdamW (two groups) for steps[0] steps; its whole state (ZeRO: consolidated on the last
    rank) saved; a fresh optimizer loads it and runs steps[1] more. On one rank the plain
    optimizer; on several, ZeroRedundancyOptimizer, and the fresh one loads the plain
    optimizer's saved state (``OUT.plain_state.npz``, written by the test), not its own."""
    model, x, y = model_and_data(gradient.float64)
    distributed = dist.is_initialized()
    if distributed:
        model = nn.parallel.DistributedDataParallel(model)

    def optimizer():
        groups = [{"params": list(model.parameters())[:2], "weight_decay": 0.0},
                  {"params": list(model.parameters())[2:]}]
        if distributed:
            from gradient.distributed.optim import ZeroRedundancyOptimizer
            return ZeroRedundancyOptimizer(groups, optimizer_class=gradient.optim.AdamW,
                                           lr=0.05, weight_decay=0.1)
        return gradient.optim.AdamW(groups, lr=0.05, weight_decay=0.1)

    shard = len(x) // size
    xs, ys = x[rank * shard:(rank + 1) * shard], y[rank * shard:(rank + 1) * shard]

    def train(opt, n):
        for _ in range(n):
            opt.zero_grad()
            nn.functional.cross_entropy(model(xs), ys).backward()
            opt.step()
    opt = optimizer()
    train(opt, steps[0])
    out = {}
    if distributed:
        opt.consolidate_state_dict(to=size - 1)
        if rank != size - 1:
            try:
                opt.state_dict()
            except gradient.errors.DistributedError:
                out["refused_elsewhere"] = np.array(1)
    if not distributed or rank == size - 1:
        saved = opt.state_dict()
        out.update({f"state_{i}_{k}": np.asarray(v.numpy() if hasattr(v, "numpy") else v)
                    for i, entry in saved["state"].items() for k, v in entry.items()})
        out["param_groups"] = np.array(json.dumps(saved["param_groups"]))
    fresh = optimizer()
    if distributed:   # the plain optimizer's state, saved by the one-process run
        plain = dict(np.load(os.environ["PLAIN_STATE"]))
        state = {}
        for key, value in plain.items():
            if key.startswith("state_"):
                _, i, name = key.split("_", 2)
                state.setdefault(int(i), {})[name] = gradient.from_numpy(value)
        saved = {"state": state, "param_groups": json.loads(str(plain["param_groups"]))}
    else:
        saved = opt.state_dict()
    fresh.load_state_dict(saved)
    train(fresh, steps[1])
    inner = model.module if hasattr(model, "module") else model
    out.update({name: p.detach().numpy() for name, p in inner.named_parameters()})
    return out


def sync_bn_inputs():
    """A batch of 6 (N, C, L) rows, the weights of a loss over it, and the layer's affine
    parameters, in float64."""
    rng = np.random.default_rng(4)
    return (rng.standard_normal((6, 3, 5)) * 2 + 1, rng.standard_normal((6, 3, 5)),
            rng.standard_normal(3), rng.standard_normal(3))


def sync_bn(rank, size, layer=None):
    """Two steps of a SyncBatchNorm (converted from a BatchNorm1d) on this rank's rows of the
    batch (rows split evenly; one process: all of them), with the loss sum(y * c): the outputs,
    the input's gradient, the affine parameters' gradients summed over the ranks and the
    running statistics."""
    x, c, weight, bias = sync_bn_inputs()
    rows = slice(rank * len(x) // size, (rank + 1) * len(x) // size)
    bn = layer or nn.SyncBatchNorm.convert_sync_batchnorm(nn.BatchNorm1d(3).double())
    with gradient.no_grad():
        bn.weight.copy_(gradient.tensor(weight))
        bn.bias.copy_(gradient.tensor(bias))
    out = {}
    for step in range(2):
        xs = gradient.tensor(x[rows] + step, requires_grad=True)
        y = bn(xs)
        (y * gradient.tensor(c[rows])).sum().backward()
        out[f"y{step}"], out[f"x_grad{step}"] = y.detach().numpy(), xs.grad.numpy()
    grads = gradient.cat([bn.weight.grad, bn.bias.grad])
    if size > 1:
        dist.all_reduce(grads)
    out["affine_grads"] = grads.numpy()
    out["running_mean"], out["running_var"] = bn.running_mean.numpy(), bn.running_var.numpy()
    return out


CASES = {
    "shard_llama": lambda r, s: shard(r, s, False),
    "shard_llama_tied": lambda r, s: shard(r, s, True),
    "pipeline": pipeline,
    "pipeline_1f1b": lambda rank, size: pipeline(rank, size, "Schedule1F1B"),
    "vocab_parallel": vocab_parallel,
    "tensor_parallel": tensor_parallel,
    "collectives": collectives,
    "rooted_and_objects": rooted_and_objects,
    "ddp": train,
    "ddp_float32": lambda r, s: train(r, s, gradient.float32),
    "ddp_accumulate": lambda r, s: train(r, s, accumulate=2),
    "ddp_small_buckets": lambda r, s: train(r, s, bucket_cap_mb=0.001),
    "ddp_unused": lambda r, s: train(r, s, unused=True),
    "zero": lambda r, s: train(r, s, adam=True),
    "zero_checkpoint": zero_checkpoint,
    "sync_bn": sync_bn,
}


def main():
    case, out = sys.argv[1], sys.argv[2]
    dist.init_process_group(BACKEND)
    rank, size = dist.get_rank(), dist.get_world_size()
    if case in ("fail", "hang"):
        if rank == 1:
            if case == "fail":
                raise RuntimeError("rank 1 fails on purpose")
            import time
            time.sleep(120)   # never reaches the barrier
        dist.barrier()        # rank 0 waits here for a rank that never comes
        return
    results = CASES[case](rank, size)
    np.savez(f"{out}.rank{rank}.npz", **results)


if __name__ == "__main__":
    main()

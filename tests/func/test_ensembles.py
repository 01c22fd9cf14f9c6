"""stack_module_state and replace_all_batch_norm_modules_: an ensemble vmapped as one model,
against torch.func on the same weights."""

import numpy as np
import pytest
import torch

import gradient


def ensemble(lib, rng):
    nn = lib.nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.bn, self.fc2 = nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2)

        def forward(self, x):
            return self.fc2(self.bn(self.fc1(x)).relu())

    models = [Net().double() for _ in range(3)]
    for m in models:
        state = {k: lib.tensor(rng.standard_normal(tuple(v.shape))) if v.is_floating_point() else v
                 for k, v in m.state_dict().items()}
        state = {k: v.abs() + 0.5 if "running_var" in k else v for k, v in state.items()}
        m.load_state_dict(state)
        m.eval()
    return models


def run(lib):
    models = ensemble(lib, np.random.default_rng(0))
    params, buffers = lib.func.stack_module_state(models)
    x = lib.tensor(np.random.default_rng(1).standard_normal((5, 3)))

    def one(p, b, data):
        return lib.func.functional_call(models[0], (p, b), (data,))

    out = lib.func.vmap(one, in_dims=(0, 0, None))(params, buffers, x)
    (out ** 2).sum().backward()
    return models, params, buffers, out, x


def test_the_stacked_ensemble_computes_each_model_and_trains_as_torchs():
    models, params, buffers, out, x = run(gradient)
    _, t_params, t_buffers, t_out, _ = run(torch)
    assert {k: tuple(v.shape) for k, v in params.items()} == \
        {k: tuple(v.shape) for k, v in t_params.items()}
    assert sorted(buffers) == sorted(t_buffers)
    np.testing.assert_allclose(out.detach().numpy(), t_out.detach().numpy(), rtol=1e-12)
    for i, m in enumerate(models):                       # index i is model i
        np.testing.assert_allclose(out[i].detach().numpy(), m(x).detach().numpy(), rtol=1e-12)
    for name, p in params.items():
        assert p.is_leaf and p.requires_grad
        np.testing.assert_allclose(p.grad.numpy(), t_params[name].grad.numpy(), rtol=1e-10)
    assert models[0].fc1.weight.grad is None            # unrelated to the models' own


def test_stacking_refuses_mixed_models():
    with pytest.raises(ValueError, match="one class"):
        gradient.func.stack_module_state([gradient.nn.Linear(2, 2), gradient.nn.ReLU()])
    with pytest.raises(ValueError, match="at least one"):
        gradient.func.stack_module_state([])
    mixed = [gradient.nn.Linear(2, 2), gradient.nn.Linear(2, 2).eval()]
    with pytest.raises(ValueError, match="training mode"):
        gradient.func.stack_module_state(mixed)


@pytest.mark.parametrize("lib", [gradient, torch], ids=["gradient", "torch"])
def test_batch_norms_lose_their_running_statistics(lib):
    model = lib.nn.Sequential(lib.nn.Linear(3, 4), lib.nn.BatchNorm1d(4))
    assert lib.func.replace_all_batch_norm_modules_(model) is model
    bn = model[1]
    assert bn.running_mean is None and bn.running_var is None and not bn.track_running_stats
    model.eval()
    x = lib.tensor(np.random.default_rng(2).standard_normal((6, 3)), dtype=lib.float32)
    y = model(x).detach().numpy()
    np.testing.assert_allclose(y.mean(0), 0.0, atol=1e-6)    # batch statistics, even in eval

"""A polynomial fitted by a single Linear layer with gradients applied by hand, as PyTorch's
regression example does, with its progress printed through ``str.format`` of tensors."""

import torch
import torch.nn.functional as F

POLY_DEGREE = 3


def make_features(x):
    x = x.unsqueeze(1)
    return torch.cat([x ** i for i in range(1, POLY_DEGREE + 1)], 1)


def poly_desc(W, b):
    result = "y = "
    for i, w in enumerate(W):
        result += "{:+.2f} x^{} ".format(w, i + 1)
    result += "{:+.2f}".format(b[0])
    return result


def run(ports):
    W_target = torch.tensor(ports.rng.standard_normal((POLY_DEGREE, 1)) * 5, dtype=torch.float32)
    b_target = torch.tensor(ports.rng.standard_normal(1) * 5, dtype=torch.float32)
    xs = torch.tensor(ports.rng.standard_normal((12, 16)), dtype=torch.float32)
    fc = torch.nn.Linear(W_target.size(0), 1)
    ports.start("fc", fc)
    losses = []
    for batch_idx in range(xs.shape[0]):
        x = make_features(xs[batch_idx])
        y = x.mm(W_target) + b_target.item()
        fc.zero_grad()
        output = F.smooth_l1_loss(fc(x), y)
        loss = output.item()
        output.backward()
        for param in fc.parameters():
            param.data.add_(-0.1 * param.grad)
        losses.append(loss)
    return {"losses": losses, "learned": poly_desc(fc.weight.view(-1), fc.bias),
            "target": poly_desc(W_target.view(-1), b_target)}

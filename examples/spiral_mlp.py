"""Train a two-layer MLP on the two-spirals problem with nothing but tensors and autograd.

Run:  python examples/spiral_mlp.py

What to read here: parameters are plain tensors with requires_grad=True; the forward pass is
ordinary arithmetic; loss.backward() fills every parameter's .grad; the update runs under
no_grad so it is not recorded. This is the whole of training, without nn.Module or optim.
"""

import math

import gradient
import gradient.nn.functional as F


def two_spirals(n_per_class: int, noise: float = 0.15):
    """Points on two interleaved spirals, labelled 0 and 1."""
    t = gradient.linspace(0.25, 3 * math.pi, n_per_class)
    xs, labels = [], []
    for label, phase in ((0, 0.0), (1, math.pi)):
        x = gradient.stack([t * (t + phase).cos(), t * (t + phase).sin()], dim=1) / 5
        xs.append(x + noise * gradient.randn(n_per_class, 2))
        labels.append(gradient.full((n_per_class,), label))
    return gradient.cat(xs), gradient.cat(labels)


def main(steps: int = 2000, hidden: int = 64, lr: float = 0.3, seed: int = 0) -> float:
    gradient.manual_seed(seed)
    x, y = two_spirals(200)

    # parameters: plain leaf tensors that record gradients
    w1 = (gradient.randn(2, hidden) * math.sqrt(2 / 2)).requires_grad_()
    b1 = gradient.zeros(hidden, requires_grad=True)
    w2 = (gradient.randn(hidden, hidden) * math.sqrt(2 / hidden)).requires_grad_()
    b2 = gradient.zeros(hidden, requires_grad=True)
    w3 = (gradient.randn(hidden, 2) * math.sqrt(1 / hidden)).requires_grad_()
    b3 = gradient.zeros(2, requires_grad=True)
    params = [w1, b1, w2, b2, w3, b3]

    for step in range(steps + 1):
        h = F.relu(x @ w1 + b1)
        h = F.relu(h @ w2 + b2)
        logits = h @ w3 + b3
        loss = F.cross_entropy(logits, y)

        for p in params:
            p.grad = None
        loss.backward()
        with gradient.no_grad():  # the update itself is not part of the graph
            for p in params:
                p -= lr * p.grad

        if step % 250 == 0:
            accuracy = (logits.argmax(dim=1) == y).float().mean().item()
            print(f"step {step:4d}  loss {loss.item():.4f}  accuracy {accuracy:.3f}")
    return accuracy


if __name__ == "__main__":
    main()

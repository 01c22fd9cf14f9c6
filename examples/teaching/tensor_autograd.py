"""Step 2: the same neuron with gradient's Tensor, checked against the scalar version.

Run:  python examples/teaching/tensor_autograd.py

gradient's engine (gradient/autograd/engine.py) is the scalar `Value.backward` grown up:
nodes hold whole arrays instead of numbers, each op's backward is a Function written with
differentiable ops (so gradients of gradients work), and broadcasting is undone in one place.
Here we compute the same function both ways and compare, then ask gradient for something the
scalar version cannot do: a second derivative.
"""

import math

import gradient
from scalar_autograd import main as scalar_main
from scalar_autograd import neuron


def main():
    value, scalar_grads = scalar_main()

    names = ["x1", "x2", "w1", "w2", "b"]
    inputs = {"x1": 2.0, "x2": 0.0, "w1": -3.0, "w2": 1.0, "b": 6.8813735870195432}
    tensors = {n: gradient.tensor(inputs[n], dtype=gradient.float64, requires_grad=True)
               for n in names}
    out = neuron(**tensors)     # the very same Python function: Tensors support + * tanh exp
    out.backward()

    print("\ngradient's Tensor:")
    assert math.isclose(out.item(), value, rel_tol=1e-12)
    for n in names:
        g = tensors[n].grad.item()
        print(f"d out / d {n} = {g:+.6f}   (scalar version: {scalar_grads[n]:+.6f})")
        assert math.isclose(g, scalar_grads[n], rel_tol=1e-12, abs_tol=1e-12)

    # A second derivative: differentiate d out / d w1 again, with respect to w1.
    w1 = gradient.tensor(inputs["w1"], dtype=gradient.float64, requires_grad=True)
    args = {**{n: gradient.tensor(inputs[n], dtype=gradient.float64) for n in names}, "w1": w1}
    (dw1,) = gradient.autograd.grad(neuron(**args), w1, create_graph=True)
    (d2w1,) = gradient.autograd.grad(dw1, w1)
    print(f"\nd^2 out / d w1^2 = {d2w1.item():+.6f}")
    return d2w1.item()


if __name__ == "__main__":
    main()

"""Step 1: reverse-mode autograd for single numbers, in about sixty lines.

Run:  python examples/teaching/scalar_autograd.py

A `Value` remembers the values it was made from and how to pass a gradient back to them.
`backward()` visits the graph from the output to the inputs (in reverse topological order)
and applies the chain rule at each node: d(out)/d(input) = d(out)/d(node) * d(node)/d(input).

The next file, `tensor_autograd.py`, does the same computation with gradient's Tensor and
checks that both agree.
"""

import math


class Value:
    """A number that records how it was computed, so its gradient can be found."""

    def __init__(self, data, parents=(), backward=lambda: None):
        self.data = data
        self.grad = 0.0
        self._parents = parents      # the Values this one was computed from
        self._backward = backward    # adds this node's gradient into its parents' .grad

    def __add__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.data + other.data, (self, other))

        def backward():              # d(a + b)/da = 1, d(a + b)/db = 1
            self.grad += out.grad
            other.grad += out.grad
        out._backward = backward
        return out

    def __mul__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.data * other.data, (self, other))

        def backward():              # d(a * b)/da = b, d(a * b)/db = a
            self.grad += other.data * out.grad
            other.grad += self.data * out.grad
        out._backward = backward
        return out

    def tanh(self):
        t = math.tanh(self.data)
        out = Value(t, (self,))

        def backward():              # d tanh(a)/da = 1 - tanh(a)^2
            self.grad += (1 - t * t) * out.grad
        out._backward = backward
        return out

    def exp(self):
        e = math.exp(self.data)
        out = Value(e, (self,))

        def backward():              # d exp(a)/da = exp(a)
            self.grad += e * out.grad
        out._backward = backward
        return out

    __radd__ = __add__
    __rmul__ = __mul__

    def backward(self):
        """Fill .grad of every Value this one depends on with d(self)/d(that value)."""
        order, seen = [], set()
        stack = [(self, False)]
        while stack:                 # iterative depth-first search: no recursion limit
            node, done = stack.pop()
            if done:
                order.append(node)   # after all of its parents: a topological order
            elif node not in seen:
                seen.add(node)
                stack.append((node, True))
                stack.extend((p, False) for p in node._parents)
        self.grad = 1.0
        for node in reversed(order):  # output first, inputs last
            node._backward()


def neuron(x1, x2, w1, w2, b):
    """A single neuron with a tanh activation, plus an exp so there is more to differentiate."""
    return (x1 * w1 + x2 * w2 + b).tanh() + (w1 * w2).exp() * 0.1


def main():
    inputs = {"x1": 2.0, "x2": 0.0, "w1": -3.0, "w2": 1.0, "b": 6.8813735870195432}
    values = {name: Value(v) for name, v in inputs.items()}
    out = neuron(**values)
    out.backward()
    print(f"out = {out.data:.6f}")
    for name, v in values.items():
        print(f"d out / d {name} = {v.grad:+.6f}")
    return out.data, {name: v.grad for name, v in values.items()}


if __name__ == "__main__":
    main()

"""Nested containers of tensors ("pytrees"), as ``torch.utils._pytree`` sees them.

Containers are tuples, lists, dicts (OrderedDict too) and namedtuples; ``None`` is an empty
container (it holds no leaves, as in PyTorch); everything else is a leaf. A spec records the
structure so that a flat list of leaves can be put back into it.
"""

from __future__ import annotations

from collections import OrderedDict


class TreeSpec:
    """The shape of a pytree: ``kind`` ('leaf', 'none', 'tuple', 'list', 'dict', 'namedtuple'),
    ``context`` (dict keys, the namedtuple class or the dict class) and child specs."""

    __slots__ = ("kind", "context", "children", "num_leaves")

    def __init__(self, kind, context=None, children=()):
        self.kind = kind
        self.context = context
        self.children = list(children)
        self.num_leaves = 1 if kind == "leaf" else sum(c.num_leaves for c in self.children)

    def is_leaf(self) -> bool:
        return self.kind == "leaf"

    def __eq__(self, other) -> bool:
        return (isinstance(other, TreeSpec) and self.kind == other.kind
                and self.context == other.context and self.children == other.children)

    def __repr__(self) -> str:
        if self.kind == "leaf":
            return "*"
        if self.kind == "none":
            return "None"
        inner = ", ".join(repr(c) for c in self.children)
        if self.kind == "dict":
            inner = ", ".join(f"{k!r}: {c!r}" for k, c in zip(self.context[1], self.children))
            return "{" + inner + "}"
        if self.kind == "list":
            return "[" + inner + "]"
        if self.kind == "namedtuple":
            return f"{self.context.__name__}({inner})"
        return "(" + inner + ("," if len(self.children) == 1 else "") + ")"


def _is_namedtuple(x) -> bool:
    return isinstance(x, tuple) and hasattr(type(x), "_fields")


def children_of(tree):
    """``(kind, context, children)`` of a container, or None for a leaf."""
    if tree is None:
        return "none", None, []
    if _is_namedtuple(tree):
        return "namedtuple", type(tree), list(tree)
    if isinstance(tree, tuple):
        return "tuple", None, list(tree)
    if isinstance(tree, list):
        return "list", None, list(tree)
    if isinstance(tree, dict):
        keys = list(tree)
        return "dict", (type(tree), keys), [tree[k] for k in keys]
    return None


def tree_flatten(tree):
    """``(leaves, spec)``: the leaves in order, and the structure to rebuild ``tree``."""
    leaves: list = []

    def walk(node):
        parts = children_of(node)
        if parts is None:
            leaves.append(node)
            return TreeSpec("leaf")
        kind, context, children = parts
        return TreeSpec(kind, context, [walk(c) for c in children])

    spec = walk(tree)
    return leaves, spec


def tree_unflatten(leaves, spec: TreeSpec):
    """The pytree of structure ``spec`` holding ``leaves`` (in order)."""
    it = iter(leaves)

    def build(s):
        if s.kind == "leaf":
            return next(it)
        if s.kind == "none":
            return None
        children = [build(c) for c in s.children]
        if s.kind == "tuple":
            return tuple(children)
        if s.kind == "list":
            return children
        if s.kind == "namedtuple":
            return s.context(*children)
        cls, keys = s.context
        pairs = zip(keys, children)
        return OrderedDict(pairs) if cls is OrderedDict else dict(pairs)

    return build(spec)


def tree_map(fn, tree):
    leaves, spec = tree_flatten(tree)
    return tree_unflatten([fn(x) for x in leaves], spec)


def broadcast_prefix(prefix, tree, leaf_types=(int, type(None))):
    """One entry of ``prefix`` per leaf of ``tree``: ``prefix`` is a tree whose every leaf stands
    for the whole subtree of ``tree`` at that place (vmap's in_dims and out_dims). Returns None
    when the structures do not fit."""
    out: list = []

    def walk(p, t):
        p_parts = None if isinstance(p, leaf_types) else children_of(p)
        if p_parts is None:          # a leaf of the prefix: repeat it over the subtree
            out.extend([p] * tree_flatten(t)[1].num_leaves)
            return True
        t_parts = children_of(t)
        if t_parts is None:
            return False
        (pk, pc, pch), (tk, tc, tch) = p_parts, t_parts
        same_kind = pk == tk or {pk, tk} <= {"tuple", "namedtuple"}
        if not same_kind or len(pch) != len(tch):
            return False
        if pk == "dict":
            if set(pc[1]) != set(tc[1]):
                return False
            lookup = dict(zip(pc[1], pch))
            pch = [lookup[k] for k in tc[1]]
        return all(walk(a, b) for a, b in zip(pch, tch))

    return out if walk(prefix, tree) else None

"""ChannelShuffle: ShuffleNet's interleaving of channel groups, as ``torch.nn.ChannelShuffle``."""

from __future__ import annotations

from .. import functional as F
from ..module import Module

__all__ = ["ChannelShuffle"]


class ChannelShuffle(Module):
    """Split the C channels of an (N, C, *) input into ``groups`` groups and interleave them.

    Example::

        shuffle = nn.ChannelShuffle(2)
        shuffle(gradient.arange(4.0).reshape(1, 4, 1, 1)).flatten()   # [0, 2, 1, 3]
    """

    def __init__(self, groups: int):
        super().__init__()
        self.groups = groups

    def forward(self, input):
        return F.channel_shuffle(input, self.groups)

    def extra_repr(self) -> str:
        return f"groups={self.groups}"

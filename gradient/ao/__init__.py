"""``gradient.ao``: PyTorch's ``torch.ao`` path, for ported scripts; it holds
:mod:`gradient.ao.quantization`."""

"""The layers: one module file per family (linear, activation, conv, pooling, normalization ...)."""

"""Op table entries for convolution, pooling, padding and unfold/fold (``nn.functional``).

Inputs are tiny because gradgradcheck is quadratic in their size. Max pools use ``distinct``
values so that no window has a tie (finite differences break at ties).
"""

from .op_info import OpInfo, Sample, arr, distinct


def _f(name):
    """``m.nn.functional.<name>(*args, **kwargs)`` for m = gradient or torch."""
    return lambda m, *args, **kwargs: getattr(m.nn.functional, name)(*args, **kwargs)


OPS = [
    OpInfo("conv1d", _f("conv1d"), lambda r: [
        Sample((arr(r, 1, 2, 6), arr(r, 3, 2, 3))),
        Sample((arr(r, 2, 2, 5), arr(r, 2, 2, 2), arr(r, 2)), {"stride": 2, "padding": 1},
               name="bias-stride"),
        Sample((arr(r, 1, 2, 6), arr(r, 2, 2, 3)), {"padding": "same", "dilation": 2}, name="same-dilation"),
        Sample((arr(r, 1, 2, 5), arr(r, 2, 2, 2)), {"padding": "same"}, name="same-even"),
        Sample((arr(r, 1, 4, 5), arr(r, 2, 2, 2)), {"groups": 2}, name="groups"),
        Sample((arr(r, 2, 6), arr(r, 2, 2, 3)), {"padding": (1,)}, name="unbatched"),
    ]),
    OpInfo("conv2d", _f("conv2d"), lambda r: [
        Sample((arr(r, 1, 2, 4, 4), arr(r, 2, 2, 2, 2))),
        Sample((arr(r, 1, 1, 5, 5), arr(r, 2, 1, 3, 3), arr(r, 2)), {"stride": 2, "padding": 1},
               name="bias-stride-padding"),
        Sample((arr(r, 1, 2, 4, 3), arr(r, 2, 2, 2, 2)), {"stride": (1, 2), "padding": (1, 0)},
               name="tuple-args"),
        Sample((arr(r, 1, 2, 4, 4), arr(r, 1, 2, 2, 2)), {"padding": "same"}, name="same-even"),
        Sample((arr(r, 1, 1, 5, 5), arr(r, 1, 1, 3, 2)), {"padding": "same", "dilation": 2},
               name="same-dilation"),
        Sample((arr(r, 1, 1, 5, 4), arr(r, 2, 1, 2, 2)), {"dilation": (2, 1), "padding": "valid"},
               name="dilation"),
        Sample((arr(r, 1, 4, 3, 3), arr(r, 2, 2, 2, 2), arr(r, 2)), {"groups": 2}, name="groups"),
        Sample((arr(r, 2, 4, 4), arr(r, 2, 2, 2, 2)), {"padding": 1}, name="unbatched"),
        Sample((arr(r, 0, 2, 4, 4), arr(r, 2, 2, 2, 2)), name="empty-batch"),
        Sample((arr(r, 1, 3, 3, 3), arr(r, 2, 3, 1, 1)), name="1x1"),
    ]),
    OpInfo("conv3d", _f("conv3d"), lambda r: [
        Sample((arr(r, 1, 1, 3, 3, 3), arr(r, 2, 1, 2, 2, 2), arr(r, 2)), {"padding": (1, 0, 0)}),
    ]),
    OpInfo("conv_transpose1d", _f("conv_transpose1d"), lambda r: [
        Sample((arr(r, 1, 2, 4), arr(r, 2, 2, 3)), {"stride": 2, "padding": 1, "output_padding": 1}),
        Sample((arr(r, 2, 4), arr(r, 2, 1, 2), arr(r, 2)), {"groups": 2, "dilation": 2}, name="unbatched"),
    ]),
    OpInfo("conv_transpose2d", _f("conv_transpose2d"), lambda r: [
        Sample((arr(r, 1, 2, 3, 3), arr(r, 2, 1, 2, 2))),
        Sample((arr(r, 1, 2, 3, 3), arr(r, 2, 2, 3, 3), arr(r, 2)),
               {"stride": 2, "padding": 1, "output_padding": 1}, name="stride-padding-output_padding"),
        Sample((arr(r, 1, 2, 2, 3), arr(r, 2, 1, 2, 2)), {"groups": 2, "dilation": 2, "stride": (1, 2)},
               name="groups-dilation"),
        Sample((arr(r, 2, 3, 2), arr(r, 2, 2, 2, 2)), {"stride": 2, "output_padding": (1, 0)},
               name="unbatched"),
    ]),
    OpInfo("max_pool1d", _f("max_pool1d"), lambda r: [
        Sample((distinct(r, 1, 2, 7),), {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True,
                                         "return_indices": True}),
        Sample((distinct(r, 2, 6),), {"kernel_size": 2, "dilation": 2, "stride": 1}, name="unbatched"),
    ]),
    OpInfo("max_pool2d", _f("max_pool2d"), lambda r: [
        Sample((distinct(r, 1, 2, 4, 4),), {"kernel_size": 2}),
        Sample((distinct(r, 1, 1, 5, 5),), {"kernel_size": 3, "stride": 2, "padding": 1}, name="padding"),
        Sample((distinct(r, 1, 1, 5, 5),), {"kernel_size": 2, "ceil_mode": True}, name="ceil_mode"),
        Sample((distinct(r, 1, 1, 5, 5),), {"kernel_size": 2, "stride": 1, "dilation": 2}, name="dilation"),
        Sample((distinct(r, 1, 1, 5, 4),), {"kernel_size": (3, 2), "stride": (2, 1), "padding": (1, 1),
                                            "return_indices": True}, name="return_indices"),
        Sample((distinct(r, 2, 4, 4),), {"kernel_size": 2, "return_indices": True}, name="unbatched"),
    ]),
    OpInfo("avg_pool1d", _f("avg_pool1d"), lambda r: [
        Sample((arr(r, 1, 2, 7),), {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True,
                                    "count_include_pad": False}),
        Sample((arr(r, 2, 6),), {"kernel_size": 2}, name="unbatched"),
    ]),
    OpInfo("avg_pool2d", _f("avg_pool2d"), lambda r: [
        Sample((arr(r, 1, 2, 4, 4),), {"kernel_size": 2}),
        Sample((arr(r, 1, 1, 5, 5),), {"kernel_size": 3, "stride": 2, "padding": 1}, name="padding"),
        Sample((arr(r, 1, 1, 5, 5),), {"kernel_size": 3, "stride": 2, "padding": 1,
                                       "count_include_pad": False}, name="exclude-pad"),
        Sample((arr(r, 1, 1, 4, 4),), {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True},
               name="ceil_mode"),
        Sample((arr(r, 1, 1, 4, 4),), {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True,
                                       "count_include_pad": False}, name="ceil_mode-exclude-pad"),
        Sample((arr(r, 1, 1, 5, 4),), {"kernel_size": (3, 2), "stride": (2, 1), "padding": (1, 0),
                                       "divisor_override": 3}, name="divisor_override"),
        Sample((arr(r, 2, 4, 4),), {"kernel_size": 2, "stride": 1}, name="unbatched"),
    ]),
    OpInfo("adaptive_avg_pool1d", _f("adaptive_avg_pool1d"), lambda r: [
        Sample((arr(r, 1, 2, 7),), {"output_size": 3}),
        Sample((arr(r, 2, 3),), {"output_size": 5}, name="unbatched-upsample"),
    ]),
    OpInfo("adaptive_avg_pool2d", _f("adaptive_avg_pool2d"), lambda r: [
        Sample((arr(r, 1, 1, 5, 7),), {"output_size": (3, 4)}, name="non-divisible"),
        Sample((arr(r, 1, 2, 4, 4),), {"output_size": 2}),
        Sample((arr(r, 1, 1, 5, 4),), {"output_size": (None, 3)}, name="None"),
        Sample((arr(r, 1, 1, 3, 3),), {"output_size": (4, 5)}, name="upsample"),
        Sample((arr(r, 2, 5, 4),), {"output_size": 3}, name="unbatched"),
    ]),
    OpInfo("adaptive_max_pool1d", _f("adaptive_max_pool1d"), lambda r: [
        Sample((distinct(r, 1, 2, 7),), {"output_size": 3, "return_indices": True}),
    ]),
    OpInfo("adaptive_max_pool2d", _f("adaptive_max_pool2d"), lambda r: [
        Sample((distinct(r, 1, 1, 5, 7),), {"output_size": (3, 4), "return_indices": True},
               name="non-divisible"),
        Sample((distinct(r, 2, 5, 5),), {"output_size": (None, 2)}, name="unbatched-None"),
        Sample((distinct(r, 1, 1, 3, 3),), {"output_size": (4, 5)}, name="upsample"),
    ]),
    OpInfo("pad", _f("pad"), lambda r: [
        Sample((arr(r, 2, 3, 4), (1, 2)), {"value": 0.5}, name="constant"),
        Sample((arr(r, 2, 3, 4), (1, 1, 2, 0, 0, 1)), name="constant-3-dims"),
        Sample((arr(r, 2, 3, 4), (-1, 2, 1, -1)), name="constant-negative"),
        Sample((arr(r, 2, 3, 4), (2, 1)), {"mode": "reflect"}, name="reflect"),
        Sample((arr(r, 1, 2, 3, 4), (1, 3, 2, 1)), {"mode": "reflect"}, name="reflect-2d"),
        Sample((arr(r, 1, 2, 3, 4), (-1, 2, 1, 0)), {"mode": "reflect"}, name="reflect-negative"),
        Sample((arr(r, 1, 1, 2, 3, 3), (1, 1, 2, 1, 1, 0)), {"mode": "reflect"}, name="reflect-3d"),
        Sample((arr(r, 2, 3, 4), (2, 3)), {"mode": "replicate"}, name="replicate"),
        Sample((arr(r, 1, 2, 3, 4), (1, 0, 2, 1)), {"mode": "replicate"}, name="replicate-2d"),
        Sample((arr(r, 2, 3, 4), (2, 3)), {"mode": "circular"}, name="circular"),
        Sample((arr(r, 1, 2, 3, 4), (1, 2, 3, 0)), {"mode": "circular"}, name="circular-2d"),
        Sample((arr(r, 1, 2, 3, 4), (-1, 2, 1, 1)), {"mode": "circular"}, name="circular-negative"),
    ]),
    OpInfo("unfold", _f("unfold"), lambda r: [
        Sample((arr(r, 1, 2, 4, 4),), {"kernel_size": 2}),
        Sample((arr(r, 1, 1, 5, 4),), {"kernel_size": (2, 3), "dilation": (2, 1), "padding": 1,
                                       "stride": (1, 2)}, name="all-args"),
        Sample((arr(r, 2, 3, 3),), {"kernel_size": 2}, name="unbatched"),
    ]),
    OpInfo("fold", _f("fold"), lambda r: [
        Sample((arr(r, 1, 8, 9),), {"output_size": (4, 4), "kernel_size": 2}),
        Sample((arr(r, 1, 4, 6),), {"output_size": (3, 5), "kernel_size": 2, "stride": 2, "padding": 1},
               name="stride-padding"),
        Sample((arr(r, 4, 4),), {"output_size": (3, 4), "kernel_size": 2, "dilation": (1, 2)},
               name="unbatched-dilation"),
    ]),
]

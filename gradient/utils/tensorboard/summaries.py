"""The TensorBoard summaries a :class:`~.writer.SummaryWriter` writes, as protocol buffers of the
``tensorboard`` package, in the forms TensorBoard's dashboards read (and PyTorch's writer
makes): a scalar as a ``simple_value`` (or a tensor under the "scalars" plugin), a histogram as
a ``HistogramProto`` over TensorFlow's default buckets, an image as a PNG, text under the
"text" plugin, hyperparameters as the "hparams" plugin's three summaries.

Example::

    >>> summary = scalar("loss", gradient.tensor(0.25))
    >>> summary.value[0].simple_value
    0.25
"""

from __future__ import annotations

import io

import numpy as np
from tensorboard.compat.proto.summary_pb2 import HistogramProto, Summary, SummaryMetadata
from tensorboard.compat.proto.tensor_pb2 import TensorProto
from tensorboard.compat.proto.tensor_shape_pb2 import TensorShapeProto
from tensorboard.plugins.text.plugin_data_pb2 import TextPluginData

from ...tensor import Tensor
from ...errors import ArgumentTypeError, ArgumentValueError

__all__ = ["scalar", "histogram", "histogram_raw", "image", "text", "hparams",
           "as_numpy", "default_bins", "figure_to_image"]


def as_numpy(value) -> np.ndarray:
    """A tensor (any device, bfloat16 too), a NumPy array or a number as a NumPy array."""
    if isinstance(value, Tensor):
        value = value.detach().cpu()
        if value.dtype.is_floating_point and value.dtype.itemsize < 4:
            value = value.float()
        return value.numpy()
    return np.asarray(value)


def scalar(tag: str, value, new_style: bool = False, double_precision: bool = False) -> Summary:
    """One number (a 0-d or one-element tensor, array or Python number)."""
    array = as_numpy(value).squeeze()
    if array.ndim != 0:
        raise ArgumentValueError(f"add_scalar: expected one number for {tag!r}, got shape "
                                 f"{tuple(array.shape)}")
    number = float(array)
    if not new_style:
        return Summary(value=[Summary.Value(tag=tag, simple_value=number)])
    proto = (TensorProto(double_val=[number], dtype="DT_DOUBLE") if double_precision
             else TensorProto(float_val=[number], dtype="DT_FLOAT"))
    metadata = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(plugin_name="scalars"))
    return Summary(value=[Summary.Value(tag=tag, tensor=proto, metadata=metadata)])


def default_bins() -> list:
    """TensorFlow's histogram buckets: 0 and the powers of 1.1 from 1e-12 to 1e20, both signs."""
    edges, v = [], 1e-12
    while v < 1e20:
        edges.append(v)
        v *= 1.1
    return [-e for e in reversed(edges)] + [0] + edges


def histogram(tag: str, values, bins, max_bins: int | None = None) -> Summary:
    """The histogram of ``values`` over ``bins`` (NumPy's: a count, edges, or a method's name),
    merged down to ``max_bins`` buckets where given. TensorBoard reads each bucket's right
    edge, so the buckets kept run from one before the first non-empty bucket (an empty one) to
    the last non-empty one."""
    values = as_numpy(values).astype(float).reshape(-1)
    if values.size == 0:
        raise ArgumentValueError(f"add_histogram: {tag!r} has no values")
    counts, edges = np.histogram(values, bins=bins)
    if max_bins is not None and len(counts) > max_bins:
        step = len(counts) // max_bins
        counts = np.pad(counts, (0, -len(counts) % step)).reshape(-1, step).sum(axis=1)
        edges = np.append(edges[:-1:step], edges[-1])
    filled = np.flatnonzero(counts)
    first, last = int(filled[0]), int(filled[-1])
    if first > 0:
        counts, edges = counts[first - 1:last + 1], edges[first:last + 2]
    else:
        counts, edges = np.concatenate([[0], counts[:last + 1]]), edges[:last + 2]
    return histogram_raw(tag, values.min(), values.max(), len(values), values.sum(),
                         values.dot(values), edges.tolist(), counts.tolist())


def histogram_raw(tag, min, max, num, sum, sum_squares, bucket_limits,  # noqa: A002
                  bucket_counts) -> Summary:
    """A histogram from its statistics and buckets, as computed elsewhere."""
    proto = HistogramProto(min=min, max=max, num=num, sum=sum, sum_squares=sum_squares,
                           bucket_limit=bucket_limits, bucket=bucket_counts)
    return Summary(value=[Summary.Value(tag=tag, histo=proto)])


def image(tag: str, picture, dataformats: str = "CHW", rescale: float = 1) -> Summary:
    """An image as a PNG: uint8 values as they are, others scaled by 255 (values in [0, 1]),
    clipped to [0, 255]; ``dataformats`` names the axes ("CHW", "HWC", "HW", or "NCHW" ...
    for several images laid out 8 to a row). One channel becomes three."""
    from PIL import Image   # (Pillow: what PNGs are made with; matplotlib depends on it)

    array = _to_hwc(as_numpy(picture), dataformats)
    scale = 1 if array.dtype == np.uint8 else 255
    array = (array.astype(np.float32) * scale).clip(0, 255).astype(np.uint8)
    height, width, channels = array.shape
    picture = Image.fromarray(array)
    picture = picture.resize((int(width * rescale), int(height * rescale)),
                             Image.Resampling.LANCZOS)
    with io.BytesIO() as out:
        picture.save(out, format="PNG")
        encoded = out.getvalue()
    return Summary(value=[Summary.Value(tag=tag, image=Summary.Image(
        height=height, width=width, colorspace=channels, encoded_image_string=encoded))])


def _to_hwc(array: np.ndarray, dataformats: str) -> np.ndarray:
    form = dataformats.upper()
    if len(set(form)) != len(form) or set(form) - set("NCHW") or array.ndim != len(form):
        raise ArgumentValueError(
            f"add_image: dataformats {dataformats!r} does not name the "
            f"{array.ndim} axes of an image of shape {tuple(array.shape)} (use "
            f"'CHW', 'HWC', 'HW', or 'NCHW' ... for several images)")
    if len(form) == 4:
        return _grid(array.transpose([form.index(c) for c in "NCHW"])).transpose(1, 2, 0)
    if len(form) == 2:
        return np.stack([array.transpose([form.index(c) for c in "HW"])] * 3, axis=2)
    hwc = array.transpose([form.index(c) for c in "HWC"])
    return np.concatenate([hwc] * 3, axis=2) if hwc.shape[2] == 1 else hwc


def _grid(images: np.ndarray, columns: int = 8) -> np.ndarray:
    """Images (N, C, H, W) side by side, ``columns`` to a row: (3, H * rows, W * columns)."""
    if images.shape[1] == 1:
        images = np.concatenate([images] * 3, axis=1)
    if images.shape[1] != 3:
        raise ArgumentValueError(f"add_images: expected 1 or 3 channels, got {images.shape[1]}")
    n, _, h, w = images.shape
    columns = min(n, columns)
    rows = -(-n // columns)
    canvas = np.zeros((3, h * rows, w * columns), images.dtype)
    for i in range(n):
        y, x = divmod(i, columns)
        canvas[:, y * h:(y + 1) * h, x * w:(x + 1) * w] = images[i]
    return canvas


def figure_to_image(figures, close: bool = True) -> np.ndarray:
    """A matplotlib figure drawn as an RGB image (3, H, W) uint8; a list of them (N, 3, H, W)."""
    import matplotlib.pyplot as plt
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    def drawn(figure):
        canvas = FigureCanvasAgg(figure)
        canvas.draw()
        width, height = figure.canvas.get_width_height()
        rgba = np.frombuffer(canvas.buffer_rgba(), np.uint8).reshape(height, width, 4)
        if close:
            plt.close(figure)
        return np.moveaxis(rgba[:, :, :3], 2, 0)

    if isinstance(figures, list):
        return np.stack([drawn(f) for f in figures])
    return drawn(figures)


def text(tag: str, string: str) -> Summary:
    """A string (Markdown, as TensorBoard's text dashboard shows it)."""
    metadata = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(
        plugin_name="text", content=TextPluginData(version=0).SerializeToString()))
    proto = TensorProto(dtype="DT_STRING", string_val=[string.encode("utf_8")],
                        tensor_shape=TensorShapeProto(dim=[TensorShapeProto.Dim(size=1)]))
    return Summary(value=[Summary.Value(tag=tag + "/text_summary", metadata=metadata,
                                        tensor=proto)])


def hparams(hparam_dict: dict, metric_dict: dict, domains: dict | None = None) -> tuple:
    """The "hparams" plugin's experiment, session-start and session-end summaries: the
    hyperparameters' names, types and values (numbers, strings, bools; a one-element tensor is
    a number), and the metrics' tags. ``domains`` lists a hyperparameter's possible values."""
    from google.protobuf import struct_pb2
    from tensorboard.plugins.hparams import metadata as hp
    from tensorboard.plugins.hparams.api_pb2 import (DataType, Experiment, HParamInfo,
                                                     MetricInfo, MetricName, Status)
    from tensorboard.plugins.hparams.plugin_data_pb2 import (HParamsPluginData,
                                                             SessionEndInfo, SessionStartInfo)

    if not isinstance(hparam_dict, dict) or not isinstance(metric_dict, dict):
        raise ArgumentTypeError("add_hparams: hparam_dict and metric_dict must be dictionaries")
    domains = domains or {}
    if not isinstance(domains, dict):
        raise ArgumentTypeError("add_hparams: hparam_domain_discrete must be a dictionary")
    for name, choices in domains.items():
        if name not in hparam_dict or not isinstance(choices, list) or not all(
                isinstance(c, type(hparam_dict[name])) for c in choices):
            raise ArgumentTypeError(
                f"add_hparams: hparam_domain_discrete[{name!r}] must be a list of "
                f"values of hparam_dict[{name!r}]'s type")
    start, infos = SessionStartInfo(), []
    for name, value in hparam_dict.items():
        if value is None:
            continue
        if isinstance(value, Tensor):
            value = float(as_numpy(value).reshape(-1)[0])
        if isinstance(value, bool):
            field, kind = "bool_value", "DATA_TYPE_BOOL"
        elif isinstance(value, (int, float)):
            field, kind = "number_value", "DATA_TYPE_FLOAT64"
        elif isinstance(value, str):
            field, kind = "string_value", "DATA_TYPE_STRING"
        else:
            raise ArgumentValueError(
                f"add_hparams: {name!r} is a {type(value).__name__}; a "
                f"hyperparameter is a number, a string, a bool or a one-element "
                f"tensor")
        setattr(start.hparams[name], field, value)
        domain = None
        if name in domains:
            domain = struct_pb2.ListValue(values=[struct_pb2.Value(**{field: c})
                                                  for c in domains[name]])
        infos.append(HParamInfo(name=name, type=DataType.Value(kind), domain_discrete=domain))

    def summary(tag, **content):
        data = HParamsPluginData(version=hp.PLUGIN_DATA_VERSION, **content)
        meta = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(
            plugin_name=hp.PLUGIN_NAME, content=data.SerializeToString()))
        return Summary(value=[Summary.Value(tag=tag, metadata=meta)])

    experiment = Experiment(hparam_infos=infos,
                            metric_infos=[MetricInfo(name=MetricName(tag=k)) for k in metric_dict])
    return (summary(hp.EXPERIMENT_TAG, experiment=experiment),
            summary(hp.SESSION_START_INFO_TAG, session_start_info=start),
            summary(hp.SESSION_END_INFO_TAG,
                    session_end_info=SessionEndInfo(status=Status.Value("STATUS_SUCCESS"))))

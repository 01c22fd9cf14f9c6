"""``SummaryWriter``: a training run's scalars, histograms, images, text and hyperparameters,
written as TensorBoard event files (the ``tensorboard`` package's record writer and protocol
buffers), for ``tensorboard --logdir runs`` to show.

Example::

    >>> writer = SummaryWriter("runs/exp1")
    >>> for step in range(100):
    ...     writer.add_scalar("loss/train", loss, step)     # a 0-d tensor or a number
    >>> writer.add_histogram("fc1.weight", model.fc1.weight, step)
    >>> writer.close()
"""

from __future__ import annotations

import os
import socket
import time
import warnings
from datetime import datetime

from tensorboard.compat.proto.event_pb2 import Event, SessionLog
from tensorboard.summary.writer.event_file_writer import EventFileWriter

from . import summaries
from ...errors import ArgumentTypeError, ArgumentValueError

__all__ = ["SummaryWriter", "FileWriter"]


class FileWriter:
    """One event file in ``log_dir``: events queued (``max_queue``) and written at least every
    ``flush_secs`` seconds by the record writer's thread."""

    def __init__(self, log_dir, max_queue: int = 10, flush_secs: int = 120,
                 filename_suffix: str = ""):
        self.event_writer = EventFileWriter(str(log_dir), max_queue, flush_secs,
                                            filename_suffix)

    def get_logdir(self) -> str:
        return self.event_writer.get_logdir()

    def add_event(self, event: Event, step=None, walltime=None) -> None:
        event.wall_time = time.time() if walltime is None else walltime
        if step is not None:
            event.step = int(step)    # (a tensor, a NumPy integer: the proto takes an int)
        self.event_writer.add_event(event)

    def add_summary(self, summary, global_step=None, walltime=None) -> None:
        self.add_event(Event(summary=summary), global_step, walltime)

    def flush(self) -> None:
        self.event_writer.flush()

    def close(self) -> None:
        self.event_writer.close()


class SummaryWriter:
    """Writes a run's summaries under ``log_dir`` (default ``runs/<date>_<host><comment>``), as
    ``torch.utils.tensorboard.SummaryWriter`` does: the same directories, tags and protocol
    buffers, so TensorBoard shows a gradient run as it shows a PyTorch one. ``purge_step``
    hides the events from that step on of an earlier run in the same directory (a restart).
    Values may be tensors (any device), NumPy arrays or numbers.

    ``add_graph`` writes nothing (gradient has no graph tracer; it warns once); audio, video,
    embeddings, meshes, precision-recall curves and custom scalar layouts are not written
    (each raises NotImplementedError)."""

    def __init__(self, log_dir=None, comment: str = "", purge_step=None, max_queue: int = 10,
                 flush_secs: int = 120, filename_suffix: str = ""):
        if not log_dir:
            stamp = datetime.now().strftime("%b%d_%H-%M-%S")
            log_dir = os.path.join("runs", f"{stamp}_{socket.gethostname()}{comment}")
        self.log_dir = str(log_dir)
        self.purge_step, self.max_queue, self.flush_secs = purge_step, max_queue, flush_secs
        self.filename_suffix = filename_suffix
        self.default_bins = summaries.default_bins()
        self.file_writer = self.all_writers = None
        self._get_file_writer()

    def _get_file_writer(self) -> FileWriter:
        """The run's own event file, made again after :meth:`close`."""
        if self.all_writers is None or self.file_writer is None:
            self.file_writer = FileWriter(self.log_dir, self.max_queue, self.flush_secs,
                                          self.filename_suffix)
            self.all_writers = {self.file_writer.get_logdir(): self.file_writer}
            if self.purge_step is not None:   # TensorBoard drops what follows this step
                step, self.purge_step = self.purge_step, None
                self.file_writer.add_event(Event(step=step, file_version="brain.Event:2"))
                self.file_writer.add_event(Event(
                    step=step, session_log=SessionLog(status=SessionLog.START)))
        return self.file_writer

    def get_logdir(self) -> str:
        return self.log_dir

    # ------------------------------------------------------------------ what it writes
    def add_scalar(self, tag: str, scalar_value, global_step=None, walltime=None,
                   new_style: bool = False, double_precision: bool = False) -> None:
        """A number (a 0-d tensor, one-element array or Python number) at ``global_step``."""
        self._get_file_writer().add_summary(
            summaries.scalar(tag, scalar_value, new_style, double_precision), global_step,
            walltime)

    def add_scalars(self, main_tag: str, tag_scalar_dict: dict, global_step=None,
                    walltime=None) -> None:
        """Several numbers in one chart: each ``{tag: value}`` in a run of its own,
        ``log_dir/<main_tag>_<tag>``, under the tag ``main_tag``."""
        walltime = time.time() if walltime is None else walltime
        root = self._get_file_writer().get_logdir()
        for tag, value in tag_scalar_dict.items():
            path = root + "/" + main_tag.replace("/", "_") + "_" + tag
            if path not in self.all_writers:
                self.all_writers[path] = FileWriter(path, self.max_queue, self.flush_secs,
                                                    self.filename_suffix)
            self.all_writers[path].add_summary(summaries.scalar(main_tag, value), global_step,
                                               walltime)

    def add_histogram(self, tag: str, values, global_step=None, bins="tensorflow",
                      walltime=None, max_bins=None) -> None:
        """The distribution of ``values`` (a weight, a gradient, activations); ``bins`` as
        NumPy's, or "tensorflow" for TensorFlow's exponential buckets."""
        if isinstance(bins, str) and bins == "tensorflow":
            bins = self.default_bins
        self._get_file_writer().add_summary(
            summaries.histogram(tag, values, bins, max_bins), global_step, walltime)

    def add_histogram_raw(self, tag: str, min, max, num, sum, sum_squares,  # noqa: A002
                          bucket_limits, bucket_counts, global_step=None,
                          walltime=None) -> None:
        """A histogram whose statistics and buckets were computed elsewhere."""
        if len(bucket_limits) != len(bucket_counts):
            raise ArgumentValueError(
                "add_histogram_raw: bucket_limits and bucket_counts must be as "
                "long as each other")
        self._get_file_writer().add_summary(
            summaries.histogram_raw(tag, min, max, num, sum, sum_squares, bucket_limits,
                                    bucket_counts), global_step, walltime)

    def add_image(self, tag: str, img_tensor, global_step=None, walltime=None,
                  dataformats: str = "CHW") -> None:
        """An image: float values in [0, 1] or uint8 ones in [0, 255], axes as
        ``dataformats`` names them ("CHW", "HWC", "HW")."""
        self._get_file_writer().add_summary(
            summaries.image(tag, img_tensor, dataformats), global_step, walltime)

    def add_images(self, tag: str, img_tensor, global_step=None, walltime=None,
                   dataformats: str = "NCHW") -> None:
        """A batch of images, shown as one, 8 to a row."""
        self.add_image(tag, img_tensor, global_step, walltime, dataformats)

    def add_figure(self, tag: str, figure, global_step=None, close: bool = True,
                   walltime=None) -> None:
        """A matplotlib figure (or a list of them) drawn as an image; ``close`` closes it."""
        picture = summaries.figure_to_image(figure, close)
        self.add_image(tag, picture, global_step, walltime,
                       dataformats="NCHW" if isinstance(figure, list) else "CHW")

    def add_text(self, tag: str, text_string: str, global_step=None, walltime=None) -> None:
        """A string, shown as Markdown."""
        self._get_file_writer().add_summary(summaries.text(tag, text_string), global_step,
                                            walltime)

    def add_hparams(self, hparam_dict: dict, metric_dict: dict, hparam_domain_discrete=None,
                    run_name=None, global_step=None) -> None:
        """A run's hyperparameters and its final metrics, for TensorBoard's HPARAMS table:
        written to ``log_dir/<run_name>`` (default: the time), the metrics as scalars too."""
        if type(hparam_dict) is not dict or type(metric_dict) is not dict:
            raise ArgumentTypeError(
                "add_hparams: hparam_dict and metric_dict must be dictionaries")
        written = summaries.hparams(hparam_dict, metric_dict, hparam_domain_discrete)
        path = os.path.join(self._get_file_writer().get_logdir(), run_name or str(time.time()))
        with SummaryWriter(log_dir=path) as run:
            for summary in written:
                run.file_writer.add_summary(summary, global_step)
            for tag, value in metric_dict.items():
                run.add_scalar(tag, value, global_step)

    def add_graph(self, model, input_to_model=None, verbose: bool = False,
                  use_strict_trace: bool = True) -> None:
        """Writes nothing: the model graph comes from TorchScript's tracer, which gradient
        does not have (a warning says so, once)."""
        if not getattr(self, "_graph_warned", False):
            self._graph_warned = True
            warnings.warn("SummaryWriter.add_graph: gradient has no graph tracer; no graph is "
                          "written (the other summaries are)", stacklevel=2)

    def _not_written(self, what: str):
        raise NotImplementedError(f"SummaryWriter.{what}: gradient's writer does not write "
                                  f"these; it writes scalars, histograms, images, figures, "
                                  f"text and hyperparameters")

    def add_audio(self, *args, **kwargs):
        self._not_written("add_audio")

    def add_video(self, *args, **kwargs):
        self._not_written("add_video")

    def add_embedding(self, *args, **kwargs):
        self._not_written("add_embedding")

    def add_mesh(self, *args, **kwargs):
        self._not_written("add_mesh")

    def add_pr_curve(self, *args, **kwargs):
        self._not_written("add_pr_curve")

    def add_custom_scalars(self, *args, **kwargs):
        self._not_written("add_custom_scalars")

    # ------------------------------------------------------------------ files
    def flush(self) -> None:
        """Write what is queued to disk now."""
        for writer in (self.all_writers or {}).values():
            writer.flush()

    def close(self) -> None:
        """Write what is queued and close the files (a later ``add_*`` opens a new one)."""
        if self.all_writers is None:
            return
        for writer in self.all_writers.values():
            writer.flush()
            writer.close()
        self.file_writer = self.all_writers = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

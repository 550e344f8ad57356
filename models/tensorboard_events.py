"""TensorBoard event files written with the tensorboard package alone, so no backend has to import TensorFlow.

tensorboard's own EventFileWriter opens its file through ``tensorboard.compat.tf``, which imports TensorFlow
whenever it is installed (slow to start, and it reserves GPU memory); this writer opens the file with plain
Python and only borrows tensorboard's protos and record framing.
"""
from __future__ import annotations

import os
import socket
import time
from itertools import count
from pathlib import Path

import numpy as np
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.summary.writer.record_writer import RecordWriter

from models.images import png_bytes

# Summary.Image.colorspace codes, by the number of channels.
COLORSPACES = {1: 1, 3: 3, 4: 4}

_writer_ids = count()


class EventWriter:
    """Appends scalar and image summaries to one new ``events.out.tfevents.*`` file in ``logdir``."""

    def __init__(self, logdir: str | Path):
        self.logdir = Path(logdir)
        self.logdir.mkdir(parents=True, exist_ok=True)
        # The name TensorFlow's writers use; the counter keeps two writers of one process and second apart.
        self.path = self.logdir / (f"events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}"
                                   f".{os.getpid()}.{next(_writer_ids)}")
        self._file = open(self.path, "wb")
        self._records = RecordWriter(self._file)
        self._write(event_pb2.Event(wall_time=time.time(), file_version="brain.Event:2"))
        self.flush()

    def scalars(self, step: int, values: dict[str, float]) -> None:
        """One event holding a scalar per name, at ``step``."""
        summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=name, simple_value=float(value))
                                             for name, value in values.items()])
        self._write(event_pb2.Event(wall_time=time.time(), step=int(step), summary=summary))

    def image(self, tag: str, step: int, image: np.ndarray, png: bytes | None = None) -> None:
        """A (H, W, C) uint8 image with 1, 3 or 4 channels, stored as PNG (``png``: its PNG already encoded)."""
        height, width, channels = image.shape
        if image.dtype != np.uint8 or channels not in COLORSPACES:
            raise ValueError(f"image must be (H, W, 1|3|4) uint8; got {image.shape} {image.dtype}")
        encoded = summary_pb2.Summary.Image(height=height, width=width, colorspace=COLORSPACES[channels],
                                            encoded_image_string=png or png_bytes(image))
        summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, image=encoded)])
        self._write(event_pb2.Event(wall_time=time.time(), step=int(step), summary=summary))

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()

    def _write(self, event: event_pb2.Event) -> None:
        self._records.write(event.SerializeToString())

"""What a chart test asks of a picture: a real PNG of the expected size, with something drawn."""

from __future__ import annotations

import io
import struct

import numpy as np
from matplotlib.image import imread


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def assert_picture(data: bytes | None, size: tuple[int, int] = (1080, 1080)) -> np.ndarray:
    """A PNG of `size` pixels, between 15 kB and 1 MB (Telegram takes photos up to 10 MB),
    not blank: many colours, light text on the dark background, and no single colour
    covering almost all of it."""
    assert data is not None, "no picture"
    assert png_size(data) == size
    assert 15_000 < len(data) < 1_000_000, len(data)
    pixels = imread(io.BytesIO(data))[:, :, :3]
    rgb = (pixels * 255).astype(np.uint32)
    packed = (rgb[:, :, 0] << 16 | rgb[:, :, 1] << 8 | rgb[:, :, 2]).ravel()
    colours, counts = np.unique(packed, return_counts=True)
    assert len(colours) > 200, "a flat picture"
    assert counts.max() / len(packed) < 0.9, "one colour covers nearly everything"
    assert rgb.max() > 200, "nothing light drawn (text, lines)"
    return pixels

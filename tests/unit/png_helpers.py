"""Reading a written plot back: how many pixels carry a given colour (a line that was drawn)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

# matplotlib's default colour cycle, first three (tab:blue, tab:orange, tab:green).
TAB_BLUE, TAB_ORANGE, TAB_GREEN = (31, 119, 180), (255, 127, 14), (44, 160, 44)


def pixels_of(path: Path, rgb: tuple[int, int, int], tolerance: int = 12) -> int:
    """Pixels of the PNG at ``path`` within ``tolerance`` (0-255 per channel) of ``rgb``."""
    import matplotlib.image

    image = matplotlib.image.imread(str(path))[..., :3]
    if image.dtype != np.uint8:
        image = np.round(image * 255)
    diff = np.abs(image.astype(np.int16) - np.array(rgb, dtype=np.int16))
    return int((diff.max(axis=-1) <= tolerance).sum())

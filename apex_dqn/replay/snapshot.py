"""Replay snapshots on disk: a shard's ``state_dict`` as one ``.npz`` file, written atomically.

Arrays are stored as arrays, everything else (counters, shapes, the RNG state) as one JSON
document, and the file is read with ``allow_pickle=False``: a snapshot is data, never code.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

_META = "__meta__"


def _flatten(state: dict, prefix: str, arrays: dict[str, Any], meta: dict) -> None:
    for key, value in state.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            meta[name] = {"__dict__": True}
            _flatten(value, f"{name}/", arrays, meta)
        elif isinstance(value, np.ndarray):
            arrays[name] = value
        else:
            meta[name] = value


def save_snapshot(path: str | os.PathLike, state: dict[str, Any]) -> Path:
    """Write ``state`` (nested dicts of arrays and JSON values) to ``path`` atomically."""
    from apex_dqn.files.atomic import write_atomic

    arrays: dict[str, Any] = {}
    meta: dict[str, Any] = {}
    _flatten(state, "", arrays, meta)
    arrays[_META] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    # Streamed into the temporary file: a large replay is never held twice in memory.
    return write_atomic(path, lambda f: np.savez(f, **arrays))


def load_snapshot(path: str | os.PathLike) -> dict[str, Any]:
    """Read a snapshot written by ``save_snapshot`` back into nested dicts."""
    with np.load(Path(path), allow_pickle=False) as data:
        meta = json.loads(data[_META].tobytes().decode())
        flat: dict[str, Any] = {k: data[k] for k in data.files if k != _META}
    flat.update({k: v for k, v in meta.items() if not (isinstance(v, dict) and "__dict__" in v)})
    root: dict[str, Any] = {}
    for name in sorted(meta, key=lambda n: n.count("/")):
        if isinstance(meta[name], dict) and "__dict__" in meta[name]:
            _node(root, name)
    for name, value in flat.items():
        *parents, leaf = name.split("/")
        node = root
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return root


def _node(root: dict, name: str) -> dict:
    node = root
    for part in name.split("/"):
        node = node.setdefault(part, {})
    return node

"""A trained VQ-GAN on disk: ``config.json`` (its :class:`VQGANConfig` and a fingerprint) and
``model.safetensors`` (every parameter and buffer, the EMA codebook's included).

Both files are written atomically, the weights first: a folder holding ``config.json`` is complete, and
its fingerprint (the first 16 hex digits of the weights file's SHA-256) names exactly those weights.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from safetensors.torch import load_file, save_file

from intern_data.io import atomic_path, atomic_write_text, file_sha256
from intern_transfer.downa.vqgan import VQGAN, VQGANConfig

__all__ = ["load_vqgan", "save_vqgan", "vqgan_fingerprint"]

CONFIG = "config.json"
WEIGHTS = "model.safetensors"


def save_vqgan(model: VQGAN, folder: str | os.PathLike[str]) -> str:
    """Write ``model`` to ``folder`` (made if missing); returns its fingerprint."""
    folder = Path(folder)
    state = {name: tensor.detach().cpu().contiguous() for name, tensor in model.state_dict().items()}
    with atomic_path(folder / WEIGHTS) as tmp:
        save_file(state, str(tmp))
    fingerprint = file_sha256(folder / WEIGHTS)[:16]
    record = {"config": model.config.to_dict(), "fingerprint": fingerprint}
    atomic_write_text(folder / CONFIG, json.dumps(record, indent=2) + "\n")
    return fingerprint


def _record(folder: Path) -> dict[str, Any]:
    path = folder / CONFIG
    if not path.is_file():
        raise FileNotFoundError(f"{folder}: no {CONFIG} (not a saved VQGAN, or its save did not finish)")
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not JSON ({err})") from err
    missing = [key for key in ("config", "fingerprint") if key not in record]
    if missing:
        raise ValueError(f"{path}: missing keys {missing}")
    return record


def vqgan_fingerprint(folder: str | os.PathLike[str]) -> str:
    """The fingerprint ``folder``'s ``config.json`` records for its weights."""
    return str(_record(Path(folder))["fingerprint"])


def load_vqgan(folder: str | os.PathLike[str]) -> VQGAN:
    """The VQ-GAN :func:`save_vqgan` wrote to ``folder``, on the CPU in eval mode. The weights must
    match the recorded fingerprint and the config's parameters and buffers exactly."""
    folder = Path(folder)
    record = _record(folder)
    try:
        config = VQGANConfig.from_dict(record["config"])
    except (TypeError, ValueError) as err:
        raise ValueError(f"{folder / CONFIG}: {err}") from err
    weights = folder / WEIGHTS
    if not weights.is_file():
        raise FileNotFoundError(f"{folder}: no {WEIGHTS}")
    if file_sha256(weights)[:16] != record["fingerprint"]:
        raise ValueError(f"{weights}: does not match the fingerprint {record['fingerprint']} in {CONFIG}")
    model = VQGAN(config)
    try:
        model.load_state_dict(load_file(weights))
    except RuntimeError as err:  # missing, unexpected or mis-shaped tensors
        raise ValueError(f"{weights}: does not fit its {CONFIG}: {err}") from err
    return model.eval()

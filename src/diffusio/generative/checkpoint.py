"""Checkpoints: a ``.safetensors`` file of tensors plus a JSON config, written atomically.

A model directory holds ``config.json`` (everything needed to rebuild the net,
the preconditioning and the conditioning) and ``model.safetensors`` (EMA
weights, plus extra tensors such as ``cond.class_embeddings``).  Training runs
add ``train_state.safetensors`` / ``train_state.json`` for ``--resume``.
Weights are never unpickled.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from diffusio.errors import UsageError

FORMAT = "diffusio-model"
VERSION = 1


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write to a temporary file in the same folder, then rename: readers never see half a file."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_save_json(path: str | Path, obj) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2) + "\n").encode())


def atomic_save_tensors(path: str | Path, tensors: dict[str, torch.Tensor], metadata: dict | None = None) -> None:
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, tmp, metadata=metadata)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_tensors(path: str | Path) -> dict[str, torch.Tensor]:
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"missing weights file {path}; point at a complete model directory")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise UsageError(f"{path} is corrupt or truncated ({err}); retrain or restore the file") from err


def load_config(model_dir: str | Path) -> dict:
    path = Path(model_dir) / "config.json"
    if not path.is_file():
        raise UsageError(f"{model_dir} has no config.json; it is not a diffusio model directory")
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise UsageError(f"{path} is not valid JSON ({err}); restore it from the training run") from err
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise UsageError(f"{path} is not a {FORMAT} config (format={config.get('format') if isinstance(config, dict) else None!r}); "
                         "load a model trained by diffusio")
    if config.get("version", 0) > VERSION:
        raise UsageError(f"{path} was written by a newer diffusio (version {config['version']}); upgrade diffusio")
    return config


def save_model(model_dir: str | Path, config: dict, tensors: dict[str, torch.Tensor]) -> None:
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    atomic_save_tensors(model_dir / "model.safetensors", tensors, metadata={"format": FORMAT})
    atomic_save_json(model_dir / "config.json", {"format": FORMAT, "version": VERSION, **config})


def load_state_into(module: torch.nn.Module, tensors: dict[str, torch.Tensor], prefix: str, source) -> None:
    """Strictly load ``prefix``-ed tensors into a module, naming the mismatch on failure."""
    state = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [k for k in expected if k in state and state[k].shape != expected[k].shape]
    if missing or unexpected or wrong:
        detail = (f"missing {missing[:2]}" if missing else f"unexpected {unexpected[:2]}" if unexpected
                  else f"shape mismatch at {wrong[:2]}")
        raise UsageError(f"{source} does not match its config ({detail}); it is from another model type "
                         "or was edited -- use the config.json that came with it")
    module.load_state_dict({k: v.to(expected[k].dtype) for k, v in state.items()})

"""Checkpoints: a ``.safetensors`` file of tensors plus a JSON config, written atomically.

A model directory holds ``config.json`` (everything needed to rebuild the net,
the preconditioning and the conditioning) and ``model.safetensors`` (EMA
weights, plus extra tensors such as ``cond.class_embeddings``).  Training runs
add ``train_state-<step>.safetensors`` / ``train_state.json`` for ``--resume``
(:func:`save_run_state`).
Weights are never unpickled.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save, save_file

from diffusio._io import atomic_path, atomic_save_json, atomic_write_bytes, fsync_dir
from diffusio.errors import UsageError

FORMAT = "diffusio-model"
VERSION = 1


def atomic_save_tensors(path: str | Path, tensors: dict[str, torch.Tensor], metadata: dict | None = None) -> None:
    with atomic_path(path) as tmp:
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, tmp, metadata=metadata)


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


STATE_JSON = "train_state.json"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_run_state(out: str | Path, step: int, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    """Write the resumable state of a training run as one unit.

    The tensors go to a file named by the step; ``train_state.json`` (written last, atomically)
    names that file and carries its SHA-256; only then are older state files removed.  A kill at
    any moment leaves ``train_state.json`` pointing at a whole, matching state.
    """
    out = Path(out)
    name = f"train_state-{step:09d}.safetensors"
    data = save({k: v.detach().contiguous().cpu() for k, v in tensors.items()})
    atomic_write_bytes(out / name, data)
    atomic_save_json(out / STATE_JSON, {**meta, "step": step, "state_file": name,
                                        "sha256": hashlib.sha256(data).hexdigest()})
    fsync_dir(out)
    for old in out.glob("train_state*.safetensors"):
        if old.name != name:
            old.unlink(missing_ok=True)


def read_run_meta(out: str | Path) -> dict:
    """The description of the last state written by :func:`save_run_state` (step, settings, ...),
    checked to name a state file; a clean error for a missing or damaged one."""
    out = Path(out)
    try:
        meta = json.loads((out / STATE_JSON).read_text())
        int(meta["step"])
        name = meta.get("state_file", "train_state.safetensors")
        if Path(name).name != name:
            raise ValueError(f"state file {name!r} is not a plain file name")
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise UsageError(f"--resume: {out / STATE_JSON} is damaged ({err}); the run cannot be resumed, "
                         "start a new one in another --out") from None
    return meta


def load_run_state(out: str | Path) -> tuple[dict, dict[str, torch.Tensor]]:
    """(meta, tensors) of the last state written by :func:`save_run_state`, verified; a clean
    error naming the problem for a missing, corrupt or mismatched state."""
    out = Path(out)
    meta = read_run_meta(out)
    step, name = int(meta["step"]), meta.get("state_file", "train_state.safetensors")
    path = out / name
    if not path.is_file():
        raise UsageError(f"--resume: {path} is missing; the run cannot be resumed, start a new one in another --out")
    if "sha256" in meta and _sha256(path) != meta["sha256"]:
        raise UsageError(f"--resume: {path} does not match the checksum in {STATE_JSON} (damaged or edited); "
                         "start a new run in another --out")
    return {**meta, "step": step}, load_tensors(path)


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


def save_classifier_guide(model_dir: str | Path, key: str, file: str, net: torch.nn.Module, reader_weight: torch.Tensor,
                          reader_bias: torch.Tensor, entry: dict, sampling: dict | None = None,
                          check: torch.nn.Module | None = None) -> Path:
    """Write a classifier guide (a noise-aware classifier ``net`` with a ``config`` dict, and the linear
    caption reader that turns a prompt into wishes; optionally a ``check`` classifier of finished images)
    into a model's folder as ``file``, record it under ``config[key]`` with ``entry``, and set the
    ``sampling`` defaults given; returns the file's path."""
    model_dir = Path(model_dir)
    config = load_config(model_dir)
    tensors = {f"net.{k}": v for k, v in net.state_dict().items()}
    tensors.update({"reader.weight": reader_weight.contiguous(), "reader.bias": reader_bias.contiguous()})
    if check is not None:
        tensors.update({f"check.{k}": v for k, v in check.state_dict().items()})
    atomic_save_tensors(model_dir / file, tensors)
    config[key] = {"file": file, "net": net.config, **({"check_net": check.config} if check is not None else {}),
                   **entry}
    if sampling:
        config.setdefault("sampling", {}).update(sampling)
    atomic_save_json(model_dir / "config.json", config)
    return model_dir / file


def load_classifier_guide(model_dir: str | Path, entry: dict, build, file: str, what: str, retrain: str):
    """``(net, reader_weight, reader_bias, check)`` of a guide :func:`save_classifier_guide` wrote: the
    nets built by ``build(**entry["net"])`` (and ``entry["check_net"]``; None when the guide has no check
    classifier) and loaded strictly; ``what`` and ``retrain`` name the guide and the command that makes
    it again in errors."""
    try:
        net = build(**entry["net"])
        check = build(**entry["check_net"]) if "check_net" in entry else None
    except (KeyError, TypeError) as err:
        raise UsageError(f"{model_dir}: its {what}'s config cannot build the classifier ({err!r}); "
                         f"train it again with `{retrain}`") from None
    tensors = load_tensors(Path(model_dir) / entry.get("file", file))
    load_state_into(net, tensors, "net.", model_dir)
    if check is not None:
        load_state_into(check, tensors, "check.", model_dir)
        check.eval().requires_grad_(False)
    try:
        weight, bias = tensors["reader.weight"].float(), tensors["reader.bias"].float()
    except KeyError as err:
        raise UsageError(f"{model_dir}: its {what} lacks the caption reader ({err}); train it again with "
                         f"`{retrain}`") from None
    return net.eval().requires_grad_(False), weight, bias, check

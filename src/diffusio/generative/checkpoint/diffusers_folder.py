"""Load a diffusers model folder (as ``save_pretrained`` writes it) as a diffusio model.

Accepted: a ``DDPMPipeline`` folder (``model_index.json``, ``unet/``, ``scheduler/``), or a
``UNet2DModel`` folder with the scheduler's ``scheduler_config.json`` beside its ``config.json``
(or in a ``scheduler/`` sub-folder).  The scheduler's training noise schedule (``beta_start``,
``beta_end``, ``beta_schedule``, ``num_train_timesteps``) and ``prediction_type`` (epsilon,
v_prediction, sample) become diffusio's VP preconditioning, so every diffusio sampler, early
stopping, the edits and evaluation drive the diffusers network.  Only the noise schedule is taken
from the scheduler, and its ``timestep_spacing`` as the default schedule (``leading`` ->
``vp-leading``: the noise levels the model's own scheduler walks); diffusio's samplers do the rest
and do not clip the predicted image (``clip_sample`` does not apply).

>>> is_diffusers_folder("fashion")
False
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from diffusio.errors import UsageError

SUPPORTED_NETS = ("UNet2DModel",)
SUPPORTED_PIPELINES = ("DDPMPipeline", "DDIMPipeline")
BETA_SCHEDULES = {"linear": "linear", "scaled_linear": "scaled_linear", "squaredcos_cap_v2": "cosine"}
PREDICTIONS = ("epsilon", "v_prediction", "sample")


def _json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise UsageError(f"{path} is not readable JSON ({err}); save the model again with save_pretrained") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path} is not a diffusers config (a JSON object)")
    return data


def is_diffusers_folder(path) -> bool:
    """Whether ``path`` is a folder written by diffusers' ``save_pretrained``."""
    path = Path(path)
    if (path / "model_index.json").is_file():
        return True
    config = path / "config.json"
    if not config.is_file():
        return False
    try:
        data = json.loads(config.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and "_diffusers_version" in data   # found by the fuzz: a config of "0"


def _parts(path: Path) -> tuple[Path, Path]:
    """(unet folder, scheduler config file)."""
    if (path / "model_index.json").is_file():
        index = _json(path / "model_index.json")
        kind = index.get("_class_name")
        if kind not in SUPPORTED_PIPELINES:
            raise UsageError(f"{path} holds a diffusers {kind}; diffusio loads {', '.join(SUPPORTED_PIPELINES)} "
                             f"folders and {', '.join(SUPPORTED_NETS)} folders")
        unet, scheduler = path / "unet", path / "scheduler" / "scheduler_config.json"
    else:
        unet = path
        scheduler = next((p for p in (path / "scheduler_config.json", path / "scheduler" / "scheduler_config.json")
                          if p.is_file()), path / "scheduler_config.json")
    if not (unet / "config.json").is_file():
        raise UsageError(f"{path}: no {unet / 'config.json'}; the folder is incomplete")
    if not scheduler.is_file():
        raise UsageError(f"{path}: no scheduler_config.json, so the noise schedule is unknown; save the scheduler "
                         "beside the UNet (scheduler.save_pretrained(folder))")
    return unet, scheduler


def preconditioning_of(scheduler: dict, where) -> dict:
    """The VP preconditioning config a diffusers scheduler config describes (or a UsageError naming
    what is not supported)."""
    if scheduler.get("trained_betas") is not None:
        raise UsageError(f"{where}: the scheduler has trained_betas; diffusio maps beta_schedule "
                         f"{', '.join(BETA_SCHEDULES)} only")
    schedule = scheduler.get("beta_schedule", "linear")
    if schedule not in BETA_SCHEDULES:
        raise UsageError(f"{where}: beta_schedule {schedule!r} is not supported; supported: {', '.join(BETA_SCHEDULES)}")
    prediction = scheduler.get("prediction_type", "epsilon")
    if prediction not in PREDICTIONS:
        raise UsageError(f"{where}: prediction_type {prediction!r} is not supported; supported: {', '.join(PREDICTIONS)}")
    if scheduler.get("rescale_betas_zero_snr"):
        raise UsageError(f"{where}: rescale_betas_zero_snr makes the last sigma infinite; diffusio cannot map it")
    return {"kind": "vp", "num_train_timesteps": int(scheduler.get("num_train_timesteps", 1000)),
            "beta_start": float(scheduler.get("beta_start", 1e-4)), "beta_end": float(scheduler.get("beta_end", 0.02)),
            "beta_schedule": BETA_SCHEDULES[schedule], "prediction": prediction}


def load_diffusers(path):
    """A :class:`~diffusio.generative.checkpoint.models.LoadedModel` around a diffusers folder."""
    from diffusio.generative.checkpoint.models import LoadedModel
    from diffusio.generative.core.denoiser import build_denoiser
    from diffusio.generative.nets.diffusers_unet import DiffusersUNet

    path = Path(path)
    unet_dir, scheduler_file = _parts(path)
    net_config = _json(unet_dir / "config.json")
    kind = net_config.get("_class_name")
    if kind not in SUPPORTED_NETS:
        raise UsageError(f"{unet_dir}: the network is a {kind}; diffusio loads {', '.join(SUPPORTED_NETS)}")
    if net_config.get("class_embed_type") not in (None,) and not net_config.get("num_class_embeds"):
        raise UsageError(f"{unet_dir}: class_embed_type {net_config['class_embed_type']!r} is not supported; "
                         "diffusio loads unconditional and num_class_embeds models")
    scheduler = _json(scheduler_file)
    pre = preconditioning_of(scheduler, scheduler_file)
    # sample on the noise levels the model's own scheduler walks (diffusers' "leading" spacing starts
    # at t = 900 of 1000, not 999): on a 35-minute model this took FD from 72.9 to 48.3 at 10 steps
    spacing = scheduler.get("timestep_spacing", "leading")
    schedule = f"vp-{spacing}" if spacing in ("leading", "trailing", "linspace") else "karras"
    if not any((unet_dir / name).is_file() for name in ("diffusion_pytorch_model.safetensors",)):
        raise UsageError(f"{unet_dir}: no diffusion_pytorch_model.safetensors; diffusio loads safetensors weights "
                         "only (save with safe_serialization=True)")
    try:
        import diffusers
    except ImportError:
        raise UsageError("loading a diffusers model needs diffusers; pip install diffusers") from None
    try:
        unet = diffusers.UNet2DModel.from_pretrained(unet_dir, use_safetensors=True, local_files_only=True)
    except (OSError, ValueError, RuntimeError, KeyError) as err:
        raise UsageError(f"{unet_dir}: diffusers could not load the UNet ({err}); the weights do not match its "
                         "config or are corrupt") from None
    classes = int(net_config.get("num_class_embeds") or 0)
    denoiser = build_denoiser(DiffusersUNet(unet, classes), **pre)
    denoiser.eval().requires_grad_(False)
    size = net_config.get("sample_size", 32)
    height, width = (size, size) if isinstance(size, int) else tuple(size)
    names = [str(i) for i in range(classes)]
    config = {"format": "diffusio-model", "version": 1, "source": "diffusers",
              "net": {"kind": "diffusers-unet2d", "path": str(unet_dir)}, "preconditioning": pre,
              "image": {"channels": int(net_config.get("in_channels", 3)), "height": int(height), "width": int(width)},
              "conditioning": {"kind": "class", "class_names": names} if classes else {"kind": "none"},
              "data": {"name": None}, "sampling": {"sampler": "dpmpp-2m", "steps": 20, "guidance": 1.0,
                                                   "schedule": schedule}}
    embeddings = torch.eye(classes) if classes else None
    return LoadedModel(denoiser, config, embeddings, path)

"""Build a denoiser from a JSON config, and find/load saved models by name or path."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from diffusio.errors import UsageError
from diffusio.generative.checkpoint.files import load_config, load_state_into, load_tensors
from diffusio.generative.core.denoiser import Denoiser, build_denoiser
from diffusio.generative.nets import build_net

WEIGHTS_DIR = Path(__file__).parent.parent / "weights"


def shipped_models(weights_dir: Path = WEIGHTS_DIR) -> list[str]:
    """Names of the models that ship inside the package (in ``weights_dir``)."""
    return sorted(p.parent.name for p in Path(weights_dir).glob("*/config.json"))


def check_not_shipped(model_dir: str | Path, what: str, weights_dir: Path = WEIGHTS_DIR,
                      trained_by: str = "diffusio train") -> None:
    """Refuse to write ``what`` into a shipped model named bare (``fashion``): commands that attach
    parts to a model write into run folders, never into the installed package."""
    name = str(model_dir)
    if not Path(model_dir).is_dir() and name in shipped_models(weights_dir):
        raise UsageError(f"{name} is a shipped model, which already carries its {what}; a {what} is written into a "
                         f"run folder of your own (`{trained_by} --out runs/NAME`)")


def resolve_model_dir(name_or_path: str | Path, weights_dir: Path = WEIGHTS_DIR,
                      trained_by: str = "diffusio train") -> Path:
    """A shipped model name (``fashion``) or a directory written by ``diffusio train`` (or, for
    other modalities, the command ``trained_by`` and their own ``weights_dir``).

    A bare name is the shipped model even when a folder of that name sits in the working directory
    (with a warning saying so); write ``./fashion`` for the folder.
    """
    path = Path(name_or_path)
    shipped = Path(weights_dir) / str(name_or_path)
    bare = isinstance(name_or_path, str) and "/" not in name_or_path and "\\" not in name_or_path
    if bare and (shipped / "config.json").is_file():
        if path.is_dir():
            warnings.warn(f"loaded the shipped model {name_or_path!r}; the folder {name_or_path} here was not used "
                          f"(write ./{name_or_path} to load it)", stacklevel=2)
        return shipped
    if path.is_dir():
        return path
    raise UsageError(f"no model {str(name_or_path)!r}: give a shipped model "
                     f"({', '.join(shipped_models(weights_dir)) or 'none'}) or a directory written by '{trained_by}'")


def load_config_of(name_or_path: str | Path) -> dict:
    """The config of a shipped model or run directory, without loading its weights."""
    return load_config(resolve_model_dir(name_or_path))


def build_denoiser_from_config(config: dict) -> Denoiser:
    try:
        net = build_net(config["net"]["kind"], **{k: v for k, v in config["net"].items() if k != "kind"})
        pre = config.get("preconditioning", {"kind": "edm"})
        return build_denoiser(net, pre["kind"], **{k: v for k, v in pre.items() if k != "kind"})
    except (KeyError, TypeError, ValueError) as err:
        raise UsageError(f"model config cannot build a network ({err}); use a config written by diffusio") from err


@dataclass
class LoadedModel:
    denoiser: Denoiser
    config: dict
    class_embeddings: torch.Tensor | None  # conditioning vector per class (text or one-hot)
    path: Path

    @property
    def cond_kind(self) -> str:
        return self.config.get("conditioning", {}).get("kind", "none")

    @property
    def class_names(self) -> list[str] | None:
        return self.config.get("conditioning", {}).get("class_names")

    @property
    def attributes(self):
        """The image features this model takes as wishes (:class:`Attributes`), or None."""
        from diffusio.generative.conditioning.attributes import Attributes

        return Attributes.from_config(self.config.get("conditioning", {}))

    @property
    def image_shape(self) -> tuple[int, int, int]:
        img = self.config["image"]
        return img["channels"], img["height"], img["width"]


def load_model(name_or_path: str | Path) -> LoadedModel:
    """A shipped model, a run folder of ``diffusio train``, or a diffusers model folder."""
    from diffusio.generative.checkpoint.diffusers_folder import is_diffusers_folder, load_diffusers

    model_dir = resolve_model_dir(name_or_path)
    if is_diffusers_folder(model_dir):
        return load_diffusers(model_dir)
    config = load_config(model_dir)
    denoiser = build_denoiser_from_config(config)
    tensors = load_tensors(model_dir / "model.safetensors")
    load_state_into(denoiser.net, tensors, "net.", model_dir / "model.safetensors")
    denoiser.eval().requires_grad_(False)
    return LoadedModel(denoiser, config, tensors.get("cond.class_embeddings"), model_dir)


def load_guide(model: LoadedModel, guide: str | Path | None) -> LoadedModel:
    """The guide of ``model``'s autoguidance: a weaker version of the same model (less trained or
    smaller), checked to make the same images from the same condition.  A model with attributes
    takes an earlier checkpoint of its own run, or a guide without attribute inputs, such as its
    parent's: that one reads the prompt part only and is blind to the wishes, so autoguidance also
    pushes toward them."""
    if not guide:
        raise UsageError("autoguidance needs a guide: a less-trained or smaller version of this model "
                         "(guide=... / --guide MODEL)")
    loaded = load_model(guide)
    mine, its = model.config.get("conditioning", {}), loaded.config.get("conditioning", {})
    same_kind = loaded.image_shape == model.image_shape and its.get("kind") == mine.get("kind")
    if same_kind and its.get("dim") == mine.get("dim") and _same_attributes(loaded.attributes, model.attributes):
        return loaded
    if same_kind and loaded.attributes is None and model.attributes is not None and its.get("dim") == mine.get("text_dim"):
        loaded.denoiser = PromptOnly(loaded.denoiser, its["dim"])
        return loaded
    raise UsageError(f"guide {guide} does not match this model (image {loaded.image_shape} vs "
                     f"{model.image_shape}, condition {its.get('kind')} {its.get('dim')} vs "
                     f"{mine.get('kind')} {mine.get('dim')}, attributes {_names(loaded.attributes)} vs "
                     f"{_names(model.attributes)}): guide with a weaker version of the same model")


class PromptOnly(torch.nn.Module):
    """A denoiser without attribute inputs, fed a condition that has them: it reads the prompt part.

    >>> from diffusio.generative.core.denoiser import EDMDenoiser
    >>> D = PromptOnly(EDMDenoiser(lambda x, c_noise, cond: cond.sum(1)[:, None, None, None].expand_as(x)), 2)
    >>> x = torch.zeros(1, 1, 2, 2)
    >>> bool(torch.equal(D(x, 1.0, torch.tensor([[1.0, 2.0, 5.0]])), D.inner(x, 1.0, torch.tensor([[1.0, 2.0]]))))
    True
    """

    def __init__(self, denoiser: torch.nn.Module, prompt_dims: int):
        super().__init__()
        self.inner, self.prompt_dims = denoiser, int(prompt_dims)
        self.sigma_min, self.sigma_max = denoiser.sigma_min, denoiser.sigma_max

    def forward(self, x, sigma, cond=None):
        # contiguous: a strided slice takes another matrix-product path on some CPUs (AVX-512), and the
        # rounding with it, so the guide would no longer be the parent's own to the bit
        return self.inner(x, sigma, None if cond is None else cond[:, :self.prompt_dims].contiguous())


def _same_attributes(a, b) -> bool:
    """Both without attributes, or the same wishes read the same way (names and per-class tables)."""
    if a is None or b is None:
        return a is None and b is None
    return a.names == b.names and all(a.tables[k].shape == b.tables[k].shape and np.allclose(a.tables[k], b.tables[k])
                                      for k in a.names)


def _names(attributes) -> str:
    return "none" if attributes is None else ",".join(attributes.names)

"""A diffusers ``UNet2DModel`` as a diffusio network: ``net(x_in, t, cond) -> raw output``.

diffusers' UNet takes the VP-scaled sample and a (fractional) training timestep, which is exactly
what :class:`~diffusio.generative.core.denoiser.VPDenoiser` passes a network, so the adapter only
turns diffusio's condition vector into what the UNet expects: nothing for an unconditional model,
the class index for a class-conditional one (diffusio carries classes as one-hot rows).
"""

from __future__ import annotations

import torch
from torch import nn


class DiffusersUNet(nn.Module):
    """Wraps a ``diffusers.UNet2DModel``; ``classes`` > 0 for a class-conditional one."""

    def __init__(self, unet: nn.Module, classes: int = 0):
        super().__init__()
        self.unet, self.classes = unet, int(classes)

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        t = torch.as_tensor(t, dtype=x.dtype, device=x.device).reshape(-1).expand(x.shape[0])
        labels = None
        if self.classes:
            if cond is None or not bool((cond.abs().sum(dim=1) > 0).all()):
                # diffusers' class embedding has no "no class" row, so there is nothing to guide against
                raise ValueError("this diffusers model is class-conditional and has no unconditional mode: "
                                 "give a label for every image and keep guidance at 1")
            labels = cond.argmax(dim=1)
        return self.unet(x, t, class_labels=labels).sample

"""Denoiser networks: ``net(x_in, c_noise, cond) -> raw output``; they know nothing of schedules."""

from diffusio.generative.nets.unet import UNet

NETS = {"unet": UNet}


def build_net(kind: str, **kwargs):
    """Build a registered network from its JSON config."""
    if kind not in NETS:
        raise ValueError(f"unknown network {kind!r}; known: {', '.join(NETS)}")
    return NETS[kind](**kwargs)


__all__ = ["UNet", "NETS", "build_net"]

"""Generative diffusion: learn to remove noise, then generate from pure noise.

The pieces are independent (see ``DESIGN.md``): a *net* (``nets``), its
*preconditioning* (``denoiser``), a *schedule* of noise levels (``schedules``),
a *sampler* (``samplers``) and *guidance* (``guidance``).  ``Generator`` ties
them together into the friendly API::

    >>> from diffusio.generative import Generator
    >>> images = Generator.load("fashion").generate("a sneaker", n=4, steps=10, seed=0)
    >>> images.shape
    (4, 28, 28)
"""

__all__ = ["Generator"]


def __getattr__(name: str):
    # Lazy: importing the package must not pull in torch and the text encoder.
    if name == "Generator":
        from diffusio.generative.pipeline import Generator

        return Generator
    raise AttributeError(name)

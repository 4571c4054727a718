"""diffusio: diffusion models for machine-learning workflows.

Two pillars:

* :mod:`diffusio.generative` -- learn to remove noise, generate from noise.
* :mod:`diffusio.spread` -- diffusion of information, disease and products on networks.
"""

__version__ = "0.1.0"

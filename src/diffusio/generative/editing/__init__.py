"""Editing on a trained model: img2img (SDEdit), inversion and reconstruction, interpolation,
inpainting (RePaint, reconstruction guidance, class naming) and denoising.

May import: core, checkpoint, data, evaluation.classifier (to name an inpainted class).
"""

from diffusio.generative.editing.edits import (class_condition, class_source, denoise, estimate_noise_sigma,
                                               img2img, inpaint, interpolate, invert, reconstruct, slerp)

__all__ = ["img2img", "invert", "reconstruct", "slerp", "interpolate", "inpaint", "class_condition",
           "class_source", "estimate_noise_sigma", "denoise"]

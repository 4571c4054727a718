"""The sampling engine: preconditioning, schedules, samplers, guidance and other denoiser wrappers.

Owns: ``denoiser`` (a net -> ``D(x, sigma, cond)``), ``schedules`` (1-D tensors of sigmas ending
in 0), ``samplers`` (pure functions ``sample_X(denoiser, x, sigmas, *, cond, callback,
generator)``), ``guidance`` and ``early_stop`` (denoisers that wrap a denoiser) and ``sampling``
(the one entry point from a denoiser to images, with a start-noise hook).

May import: torch and ``diffusio.errors`` only.  It reaches a network only through the denoiser it
is handed, and it never imports trust, evaluation, the CLI or the studio (tests/test_layers.py).
"""

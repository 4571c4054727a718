"""Training: the denoising losses, EMA, checkpoints, resume (``trainer``), torchrun/DDP
(``distributed``) and the loss curve (``plots``).

May import: core, nets, conditioning, data, checkpoint.
"""

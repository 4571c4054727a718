"""Saved models: the file format (``files``: safetensors + JSON, atomic writes, validation, never
pickle) and building or loading a model by shipped name or run directory (``models``).

May import: core (preconditioning), nets, conditioning.attributes.
"""

"""What a model is conditioned on: the MiniLM text encoder, caption phrasings, image attributes.

May import: ``data`` (attributes are measured on images) and ``diffusio.errors``.
"""

"""Making sampling cheap: consistency distillation to 1/2/4-step students (``distill``), ONNX
export and int8 quantisation (``export``).

May import: core, checkpoint, conditioning, training, data.
"""

"""Honest evaluation offline: the small feature classifiers shipped per dataset (``classifier``),
FD / KID / precision-recall (``metrics``) and the report beside the real floor (``evaluate``).

May import: pipeline, data, conditioning.
"""

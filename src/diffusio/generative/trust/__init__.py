"""Trust and safety around the models: the keyed watermark in the start noise (``watermark``) and
the image stamp (``stamp``), memorisation and bias audits (``audit``), dataset curation
(``curate``) and labelled synthetic datasets (``synthesize``).

The watermark reaches sampling only through the start-noise hook of :func:`core.sampling.sample`.
May import: pipeline, core, checkpoint, data, editing, evaluation.
"""

"""A fitted TableDiffusion on disk: ``config.json`` (plain JSON) and ``model.safetensors`` (EMA
weights, quantile tables, the label check's trees), and back."""

from __future__ import annotations

import dataclasses

import torch

from diffusio.errors import UsageError
from diffusio.generative.checkpoint import files as ckpt
from diffusio.generative.training.fitting import Progress
from diffusio.tabular.derived import DerivedColumn
from diffusio.tabular.encoding import Column, TableEncoder
from diffusio.tabular.label_check import TreeEnsemble
from diffusio.tabular.lookups import LookupColumn
from diffusio.tabular.relations import Relation

KIND = "table"


def table_config(model) -> dict:
    """What config.json holds: settings, columns, encoder, rules, label check, training record."""
    settings = {f.name: getattr(model, f.name) for f in dataclasses.fields(model) if f.name != "quiet"}
    return {"kind": KIND, "settings": settings, "columns": model.columns, "target_name": model.target_name,
            "target": None if model.target is None else dataclasses.asdict(model.target),
            "class_weights": model.class_weights, "encoder": model.encoder.to_json(),
            "derived": [rule.to_json() for rule in model.derived],
            "relations": [rel.to_json() for rel in model.relations],
            "lookups": [rule.to_json() for rule in model.lookups],
            "label_check": None if model.check is None else {"blurred": model.blurred},
            "trained": {"steps": model.run.step, "of_steps": model.total_steps,
                        "wall_seconds": round(model.run.wall, 1),
                        "mix": getattr(model, "mixed", None)}}


def table_tensors(model) -> dict[str, torch.Tensor]:
    """What model.safetensors holds: EMA weights, quantile tables, the label check's trees."""
    t = {f"net.{k}": v for k, v in model.ema.net.state_dict().items()}
    t.update({f"quantiles.{k}": torch.from_numpy(v) for k, v in model.encoder.quantiles.items()})
    if model.check is not None:
        t.update(model.check.tensors())
    return t


def restore(model, config: dict, tensors: dict) -> None:
    """Fill a new TableDiffusion from a saved config and tensors; a clear error for incomplete files."""
    try:
        model.columns, model.target_name = config["columns"], config["target_name"]
        model.target = None if config["target"] is None else Column(**config["target"])
        model.class_weights = config["class_weights"]
        model.derived = [DerivedColumn(**rule) for rule in config.get("derived", [])]
        model.relations = [Relation.from_json(rel) for rel in config.get("relations", [])]
        unknown = {c for rel in model.relations for c in (rel.name, *rel.sources)} - set(model.columns)
        if unknown:  # an edited or foreign config: fail here, not with a KeyError while sampling
            raise KeyError(f"relations name columns the table does not have: {sorted(unknown)}")
        quantiles = {k[len("quantiles."):]: v.double().numpy() for k, v in tensors.items() if k.startswith("quantiles.")}
        model.encoder = TableEncoder.from_json(config["encoder"], quantiles)
        model.lookups = [LookupColumn.from_json(rule) for rule in config.get("lookups", [])]
        kinds = {col.name: col.kind for col in model.encoder.columns}
        kinds.update({model.target_name: "categorical"} if model.target is not None else {})
        if any(kinds.get(rule.name) != "numeric" or any(kinds.get(k) != "categorical" for k in rule.keys)
               for rule in model.lookups):  # a number looked up by categories, nothing else
            raise KeyError("lookups must name a numeric column and categorical keys of the table")
        model.check = None if model.target is None else \
            TreeEnsemble.from_tensors(tensors, model.encoder.width, len(model.target.categories))
        blurred = (config.get("label_check") or {}).get("blurred") if model.check is not None else None
        if blurred is not None and not (isinstance(blurred, list) and all(
                isinstance(c, int) and 0 <= c < len(model.target.categories) for c in blurred)):
            raise KeyError("label_check.blurred must list class codes of the target")
        model.blurred = blurred
        model.run = Progress(config["trained"]["steps"], [], config["trained"]["wall_seconds"])
        model.total_steps = config["trained"].get("of_steps")
        model.mixed = config["trained"].get("mix")
    except (KeyError, TypeError, ValueError) as err:
        raise UsageError(f"the model's config.json is incomplete ({err!r}); refit the model") from None
    model._build()
    ckpt.load_state_into(model.ema.net, tensors, "net.", "model.safetensors")

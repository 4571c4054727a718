"""Models by short name (``sir``, ``ic``, ...), for the command line and the HTTP API.

>>> type(build_model("sir", beta=0.05, gamma=0.1)).__name__
'SIR'
"""

from __future__ import annotations

import dataclasses

from diffusio.errors import UsageError

# short name -> model class; the parameters each takes are the class's own fields
NAMES: dict[str, str] = {
    "ic": "IndependentCascade", "lt": "LinearThreshold", "si": "SI", "sis": "SIS", "sir": "SIR", "seir": "SEIR",
    "sir-ct": "ContinuousSIR", "sis-ct": "ContinuousSIS", "bass": "Bass", "voter": "Voter",
    "majority": "MajorityRule", "threshold": "ThresholdOpinion",
}


def model_class(name: str) -> type:
    from diffusio import spread

    if name not in NAMES:
        raise UsageError(f"unknown model {name!r}; choose one of {', '.join(NAMES)}")
    return getattr(spread, NAMES[name])


def parameters(name: str) -> list[str]:
    """The keyword arguments model ``name`` takes (its dataclass fields), in declaration order."""
    return [f.name for f in dataclasses.fields(model_class(name))]


def all_parameters() -> list[str]:
    """Every parameter any model takes: the command line has one flag for each."""
    seen: dict[str, None] = {}
    for name in NAMES:
        seen.update(dict.fromkeys(parameters(name)))
    return list(seen)


def build_model(name: str, flag_prefix: str = "", **params):
    """The model ``name`` with ``params`` (None values are left at the model's default).

    ``flag_prefix`` ("--" on the command line) is how parameter names appear in error messages.
    """
    cls, accepted = model_class(name), parameters(name)
    given = {k: v for k, v in params.items() if v is not None}
    extra = sorted(set(given) - set(accepted))
    if extra:
        shown = lambda names: ", ".join(flag_prefix + n.replace("_", "-" if flag_prefix else "_") for n in names)
        raise UsageError(f"{shown(extra)} does not apply to model {name}; it takes {shown(accepted)}")
    return cls(**given)

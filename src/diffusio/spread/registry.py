"""Models by short name (``sir``, ``ic``, ...), for the command line and the HTTP API.

>>> type(build_model("sir", beta=0.05, gamma=0.1)).__name__
'SIR'
"""

from __future__ import annotations

from diffusio.errors import UsageError

# short name -> (class name, parameters it accepts)
MODELS: dict[str, tuple[str, set[str]]] = {
    "ic": ("IndependentCascade", {"p"}),
    "lt": ("LinearThreshold", {"threshold"}),
    "si": ("SI", {"beta"}),
    "sis": ("SIS", {"beta", "gamma"}),
    "sir": ("SIR", {"beta", "gamma"}),
    "seir": ("SEIR", {"beta", "gamma", "sigma"}),
    "sir-ct": ("ContinuousSIR", {"beta", "gamma", "dt"}),
    "sis-ct": ("ContinuousSIS", {"beta", "gamma", "dt"}),
    "bass": ("Bass", {"p", "q"}),
    "voter": ("Voter", {"initial_yes"}),
    "majority": ("MajorityRule", {"initial_yes"}),
    "threshold": ("ThresholdOpinion", {"threshold", "initial_yes"}),
}
PARAMS = ("p", "q", "beta", "gamma", "sigma", "threshold", "initial_yes", "dt")


def build_model(name: str, flag_prefix: str = "", **params):
    """The model ``name`` with ``params`` (None values are left at the model's default).

    ``flag_prefix`` ("--" on the command line) is how parameter names appear in error messages.
    """
    from diffusio import spread

    if name not in MODELS:
        raise UsageError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    class_name, accepted = MODELS[name]
    given = {k: v for k, v in params.items() if v is not None}
    extra = sorted(set(given) - accepted)
    if extra:
        shown = lambda names: ", ".join(flag_prefix + n.replace("_", "-" if flag_prefix else "_") for n in names)
        raise UsageError(f"{shown(extra)} does not apply to model {name}; it takes {shown(sorted(accepted))}")
    if name == "lt" and "threshold" in given:
        given["thresholds"] = given.pop("threshold")
    return getattr(spread, class_name)(**given)

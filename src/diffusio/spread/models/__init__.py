"""Spread models: cascades, epidemics, Bass adoption and opinion dynamics."""

from diffusio.spread.models.base import Model
from diffusio.spread.models.bass import Bass, bass_curve
from diffusio.spread.models.cascade import IndependentCascade, LinearThreshold
from diffusio.spread.models.compartmental import SEIR, SI, SIR, SIS
from diffusio.spread.models.continuous import ContinuousSIR, ContinuousSIS
from diffusio.spread.models.opinion import MajorityRule, ThresholdOpinion, Voter

__all__ = ["Model", "IndependentCascade", "LinearThreshold", "SI", "SIS", "SIR", "SEIR", "ContinuousSIR",
           "ContinuousSIS", "Bass", "bass_curve", "Voter", "MajorityRule", "ThresholdOpinion"]

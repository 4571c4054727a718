"""diffusio.spread: diffusion of information, disease, products and opinions on networks.

Examples
--------
>>> from diffusio import spread
>>> result = spread.simulate("karate", spread.SIR(beta=0.05, gamma=0.1), seeds=[0], trials=100, seed=0)
>>> result.summary().columns[:4].tolist()
['step', 'S_mean', 'S_lower', 'S_upper']
"""

from diffusio.spread.datasets import list_datasets, load_dataset, random_graph
from diffusio.spread.graph import Graph, as_graph, read_edge_list
from diffusio.spread.models import (SEIR, SI, SIR, SIS, Bass, ContinuousSIR, ContinuousSIS, IndependentCascade,
                                    LinearThreshold, MajorityRule, Model, ThresholdOpinion, Voter, bass_curve)
from diffusio.spread.simulate import SpreadResult, random_seeds, simulate

__all__ = ["Graph", "as_graph", "read_edge_list", "list_datasets", "load_dataset", "random_graph", "simulate",
           "SpreadResult", "random_seeds", "Model", "IndependentCascade", "LinearThreshold", "SI", "SIS", "SIR",
           "SEIR", "ContinuousSIR", "ContinuousSIS", "Bass", "bass_curve", "Voter", "MajorityRule",
           "ThresholdOpinion"]

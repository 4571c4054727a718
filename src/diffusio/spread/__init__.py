"""diffusio.spread: diffusion of information, disease, products and opinions on networks.

Examples
--------
>>> from diffusio import spread
>>> result = spread.simulate("karate", spread.SIR(beta=0.05, gamma=0.1), seeds=[0], trials=100, seed=0)
>>> result.summary().columns[:4].tolist()
['step', 'S_mean', 'S_lower', 'S_upper']
"""

from diffusio.spread.datasets import list_datasets, load_dataset, random_graph
from diffusio.spread.files import read_edge_list
from diffusio.spread.graph import Graph, as_graph
from diffusio.spread.models import (SEIR, SI, SIR, SIS, Bass, ContinuousSIR, ContinuousSIS, IndependentCascade,
                                    LinearThreshold, MajorityRule, Model, ThresholdOpinion, Voter, bass_curve)
from diffusio.spread.simulate import SpreadResult, TruncationWarning, random_seeds, simulate
from diffusio.spread.apps.debtrank import debtrank, exposure_matrix, plot_debtrank
from diffusio.spread.apps.fitting import CurveFit, bass_ols, bass_sales, fit_bass, fit_sir, plot_fit, sir_incidence
from diffusio.spread.apps.influence import (celf, degree_discount, expected_spread, imm, influence_maximization)
from diffusio.spread.apps.interventions import (immunization_curve, immunization_order, plot_immunization,
                                           remove_nodes)
from diffusio.spread.apps.recommend import (diffusion_scores, evaluate, load_movielens, movielens_items, read_links,
                                            recommend, split_links)
from diffusio.spread.apps.sweep import sweep
from diffusio.spread.apps.spatial import (arrival_times, grid, minnesota, plot_spatial, spatial_graph,
                                          spatial_spread)

__all__ = ["Graph", "as_graph", "read_edge_list", "list_datasets", "load_dataset", "random_graph", "simulate",
           "TruncationWarning",
           "SpreadResult", "random_seeds", "Model", "IndependentCascade", "LinearThreshold", "SI", "SIS", "SIR",
           "SEIR", "ContinuousSIR", "ContinuousSIS", "Bass", "bass_curve", "Voter", "MajorityRule",
           "ThresholdOpinion",
           # applications
           "sweep", "influence_maximization", "imm", "celf", "degree_discount", "expected_spread",
           "immunization_curve", "immunization_order", "remove_nodes", "plot_immunization",
           "fit_bass", "bass_ols", "bass_sales", "fit_sir", "sir_incidence", "CurveFit", "plot_fit",
           "recommend", "evaluate", "diffusion_scores", "split_links", "load_movielens", "movielens_items", "read_links",
           "debtrank", "exposure_matrix", "plot_debtrank",
           "spatial_spread", "spatial_graph", "arrival_times", "grid", "minnesota", "plot_spatial"]

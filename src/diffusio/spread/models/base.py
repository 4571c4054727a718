"""What every spread model provides to :func:`diffusio.spread.simulate`."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from diffusio.spread.graph import Graph


@dataclass(frozen=True)
class Model(ABC):
    """Base class: a model names its states and runs a block of trials in a compiled kernel.

    Subclasses set ``states`` (column names of the curves), ``seeding`` (what
    ``seeds=None`` means: ``"one_random"`` node per trial, ``"none"`` or a random
    ``"fraction"`` of nodes) and implement :meth:`prepare` and :meth:`run`.
    """

    states: ClassVar[tuple[str, ...]] = ()
    seeding: ClassVar[str] = "one_random"
    continuous: ClassVar[bool] = False

    @property
    def code_names(self) -> tuple[str, ...]:
        """State name of each integer code used inside the kernel."""
        return self.states

    @property
    def state_codes(self) -> tuple[int, ...]:
        """Kernel code of each entry of ``states`` (the columns of ``counts`` to keep)."""
        return tuple(range(len(self.states)))

    @property
    def n_codes(self) -> int:
        return len(self.code_names)

    @property
    def time_step(self) -> float:
        """Time between two recorded points of a curve."""
        return 1.0

    @property
    def initial_fraction(self) -> float:
        return 0.0

    @property
    def always_ends(self) -> bool:
        """Every trial reaches an end state in finitely many steps (cascades; epidemics whose nodes
        all recover), so :func:`simulate` can run each to its end by default."""
        return False

    @property
    def step_bound(self) -> int | None:
        """A bound on the steps of any trial on ``n`` nodes, if the model has one (progressive
        models activate at least one node per step): used as ``n`` times this factor."""
        return None

    @abstractmethod
    def prepare(self, graph: Graph) -> tuple:
        """Graph-dependent arrays (validated) passed on to :meth:`run`."""

    @abstractmethod
    def run(self, graph: Graph, prepared: tuple, seed_matrix: np.ndarray, rng_states: np.ndarray,
            max_steps: int, counts: np.ndarray, steps: np.ndarray, final: np.ndarray, record_final: bool,
            cut_short: np.ndarray) -> None:
        """Run ``len(rng_states)`` trials, writing ``counts[trial, step, state]``, the last
        step of each trial into ``steps`` and, if ``record_final``, node states into ``final``.
        A kernel that has to stop a trial before its end for another reason than ``max_steps``
        (the event budget of continuous time) sets ``cut_short[trial]``."""

"""Applications on the spread engine: influence maximisation (``influence`` with ``rrsets``),
immunisation (``interventions``), Bass/SIR fitting (``fitting``), ProbS/HeatS recommendation
(``recommend``), DebtRank (``debtrank``) and spatial spread (``spatial``).

May import: the engine (``graph``, ``models``, ``simulate``, ``params``, ``rng``, ``figures``);
the engine never imports apps.
"""

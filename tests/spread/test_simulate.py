import networkx as nx
import numpy as np
import pytest

from diffusio import spread
from diffusio.errors import UsageError

ALL_MODELS = [spread.IndependentCascade(p=0.2), spread.LinearThreshold(), spread.SI(beta=0.2),
              spread.SIS(beta=0.1, gamma=0.2), spread.SIR(beta=0.1, gamma=0.1),
              spread.SEIR(beta=0.1, gamma=0.1, sigma=0.5), spread.ContinuousSIR(beta=0.2, gamma=0.5),
              spread.ContinuousSIS(beta=0.2, gamma=0.5), spread.Bass(p=0.02, q=0.3), spread.Voter(),
              spread.MajorityRule(), spread.ThresholdOpinion(threshold=0.3)]


@pytest.mark.parametrize("model", ALL_MODELS, ids=lambda m: type(m).__name__)
def test_every_model_is_reproducible_and_conserves_nodes(model):
    graph = nx.les_miserables_graph()
    first = spread.simulate(graph, model, trials=8, seed=3, max_steps=60, workers=1, final_states=True)
    again = spread.simulate(graph, model, trials=8, seed=3, max_steps=60, workers=2, final_states=True)
    assert first.curves.equals(again.curves)  # same seed, same output, whatever the threads
    assert (first.curves[list(model.states)].sum(axis=1) == 77).all()
    assert list(first.curves.columns[:2]) == ["trial", "step"]
    states = first.final_states
    assert states.shape == (77, 8) and "Valjean" in states.index
    last = first.curves.groupby("trial").last()
    for state in model.states:
        assert (states == state).sum(axis=0).tolist() == last[state].tolist()


def test_trial_streams_do_not_depend_on_trial_count():
    model = spread.SIR(beta=0.1, gamma=0.1)
    few = spread.simulate("karate", model, trials=3, seed=11)
    many = spread.simulate("karate", model, trials=6, seed=11)
    assert np.array_equal(few.final_counts.to_numpy(), many.final_counts.to_numpy()[:3])
    other = spread.simulate("karate", model, trials=6, seed=12)
    assert not np.array_equal(other.final_counts.to_numpy(), many.final_counts.to_numpy())


def test_default_patient_zero_varies_by_trial():
    result = spread.simulate("karate", spread.SIR(beta=0.0, gamma=1.0), trials=50, seed=0, final_states=True)
    patients = {tuple(np.flatnonzero(result.final_states[t] == "R")) for t in range(50)}
    assert len(patients) > 10


def test_summary_interval_contains_mean_and_shrinks_with_trials():
    model = spread.IndependentCascade(p=0.3)
    small = spread.simulate("karate", model, seeds=[0], trials=30, seed=0).summary().iloc[-1]
    large = spread.simulate("karate", model, seeds=[0], trials=3000, seed=0).summary().iloc[-1]
    assert small["active_lower"] <= small["active_mean"] <= small["active_upper"]
    assert large["active_upper"] - large["active_lower"] < small["active_upper"] - small["active_lower"]


def test_final_state_dict_and_missing_request():
    result = spread.simulate(nx.path_graph(["a", "b"]), spread.IndependentCascade(p=1.0), seeds=["a"], trials=1,
                             final_states=True)
    assert result.final_state(0) == {"a": "active", "b": "active"}
    with pytest.raises(UsageError, match="final_states=True"):
        _ = spread.simulate("karate", spread.SIR(), trials=1).final_states


def test_continuous_curves_carry_time():
    result = spread.simulate("karate", spread.ContinuousSIR(beta=0.5, gamma=1.0, dt=0.25), seeds=[0], trials=5,
                             seed=0)
    assert np.allclose(result.curves["time"], result.curves["step"] * 0.25)


def test_threshold_opinion_per_node_and_weight_parameters():
    g = nx.path_graph(4)
    thresholds = {0: 0.5, 1: 0.5, 2: 1.0, 3: 0.5}  # node 2 needs both neighbours
    result = spread.simulate(g, spread.ThresholdOpinion(threshold=thresholds), seeds=[0], trials=1)
    assert result.curves["yes"].tolist() == [1, 2, 2]
    weighted = nx.Graph()
    weighted.add_weighted_edges_from([(0, 1, 1.0), (1, 2, 0.0)])
    ic = spread.simulate(weighted, spread.IndependentCascade(p="weight"), seeds=[0], trials=20, seed=0)
    assert ic.final_counts["active"].tolist() == [2] * 20


def test_voter_keeps_expected_share_on_complete_graph():
    result = spread.simulate(nx.complete_graph(30), spread.Voter(initial_yes=0.3), trials=400, seed=1, max_steps=5)
    start = result.summary().iloc[0]
    later = result.summary().iloc[5]
    assert later["yes_lower"] - 1.0 <= start["yes_mean"] <= later["yes_upper"] + 1.0


@pytest.mark.parametrize("kwargs, message", [
    ({"trials": 0}, "trials"), ({"max_steps": -1}, "max_steps"), ({"seeds": []}, "empty"),
    ({"seeds": 3}, "list of node labels"), ({"workers": 0}, "workers"),
])
def test_bad_simulate_arguments(kwargs, message):
    with pytest.raises(UsageError, match=message):
        spread.simulate("karate", spread.SIR(), **kwargs)


def test_absurd_rates_are_cut_short_and_said_not_hung():
    """Issue 26.1: beta = 1e6 in continuous time used to run for minutes; now a bounded, reported stop."""
    import time
    import warnings

    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = spread.simulate("karate", spread.ContinuousSIS(beta=1e6, gamma=1.0), seeds=[0], trials=2,
                                 seed=0, max_steps=10)
    assert time.perf_counter() - start < 60
    assert result.cut_short == 2 and any("stopped after" in str(w.message) for w in caught)
    assert result.summary().attrs["warnings"] == result.warnings() != []


def test_trials_cut_by_max_steps_are_reported():
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = spread.simulate("karate", spread.SIR(beta=0.05, gamma=0.01), seeds=[0], trials=20, seed=0,
                                 max_steps=3)
    assert result.hit_max_steps > 0 and any("max_steps=3" in str(w.message) for w in caught)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        full = spread.simulate("karate", spread.SIR(beta=0.05, gamma=0.5), seeds=[0], trials=20, seed=0)
    assert full.hit_max_steps == 0 and full.warnings() == [] and not caught


def test_cascades_run_to_their_end_by_default():
    """Issue 23: a cascade longer than the first horizon (500 steps) is rerun from its own random
    stream until it ends -- the same result as one long run, and no trial cut short."""
    import warnings

    import networkx as nx

    from diffusio import spread

    path = nx.path_graph(1500, create_using=nx.DiGraph)
    model = spread.LinearThreshold(threshold=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")              # nothing is cut, so nothing may warn
        default = spread.simulate(path, model, seeds=[0], trials=3, seed=0)
    assert default.hit_max_steps == 0
    assert default.curves.groupby("trial")["active"].max().tolist() == [1500] * 3
    explicit = spread.simulate(path, model, seeds=[0], trials=3, seed=0, max_steps=5000)
    assert default.curves.equals(explicit.curves)
    mixed = spread.simulate(nx.disjoint_union(path, nx.path_graph(3, create_using=nx.DiGraph)), model,
                            seeds=[0, 1500], trials=2, seed=1)
    assert mixed.hit_max_steps == 0 and int(mixed.curves["active"].iloc[-1]) == 1503


def test_a_user_horizon_that_cuts_trials_says_so():
    import networkx as nx

    from diffusio import spread

    with pytest.warns(spread.TruncationWarning, match="3 of 3 trials were still changing at max_steps=100"):
        cut = spread.simulate(nx.path_graph(300), spread.IndependentCascade(p=1.0), seeds=[0], trials=3, seed=0,
                              max_steps=100)
    assert cut.hit_max_steps == 3 and "raise max_steps" in " ".join(cut.warnings())


def test_models_that_may_never_end_keep_a_default_horizon():
    from diffusio import spread

    assert spread.SIR(beta=0.1, gamma=0.1).always_ends and not spread.SIR(beta=0.1, gamma=0.0).always_ends
    assert not spread.SIS(beta=0.1, gamma=0.1).always_ends and not spread.SI(beta=0.1).always_ends
    assert spread.IndependentCascade(p=0.1).always_ends and spread.SEIR(beta=0.1, gamma=0.1, sigma=0.5).always_ends


@pytest.mark.parametrize("model", ["ic", "si", "sir", "seir"])
def test_a_tiny_probability_on_high_degree_nodes_does_not_crash(model):
    """Found by the fuzz (bench/probe.py): beta=4.6e-178 made the geometric skip over a hub's edges
    wrap to a negative index, and `spread simulate --model seir` segfaulted."""
    import networkx as nx

    from diffusio.spread.registry import build_model

    params = {"ic": {"p": 4.6e-178}, "si": {"beta": 4.6e-178}, "sir": {"beta": 4.6e-178, "gamma": 0.5},
              "seir": {"beta": 4.6e-178, "gamma": 0.5, "sigma": 0.9}}[model]
    result = spread.simulate(nx.karate_club_graph(), build_model(model, **params), seeds=[0], trials=20, seed=1,
                             max_steps=50)
    final = result.summary().iloc[-1]
    assert final[result.states[0] + "_mean"] == 33  # nobody else is ever reached


@pytest.mark.slow
def test_a_trial_that_would_take_forever_stops_at_the_automatic_bound_and_says_so():
    """Issue 26 (found by the fuzz): SIR with gamma = 1e-30 reran ever longer horizons for minutes;
    the automatic horizon now stops at MAX_AUTO_STEPS and the result warns."""
    import time

    from diffusio.spread.simulate import MAX_AUTO_STEPS

    start = time.monotonic()
    with pytest.warns(spread.TruncationWarning, match="still changing"):
        result = spread.simulate("karate", spread.SIR(beta=0.5, gamma=1e-30), trials=2, seed=0, workers=1)
    assert result.hit_max_steps == 2 and result.trial_steps.max() == MAX_AUTO_STEPS
    assert time.monotonic() - start < 60


@pytest.mark.parametrize("model", [spread.IndependentCascade(p=0.2), spread.LinearThreshold()],
                         ids=["ic", "lt"])
def test_cascade_work_arrays_are_reused_across_calls_without_changing_results(model):
    """The cascade kernels keep their per-node work arrays with the graph (no per-call allocation)
    and take fresh marks on every call; when the int32 marks would overflow they are cleared."""
    from diffusio.spread.scratch import _POOLS

    def run(graph):
        result = spread.simulate(graph, model, seeds=[0], trials=40, seed=3, workers=1, final_states=True)
        return result.curves.to_numpy(), result.final_states.to_numpy().astype(str)

    fresh = run(spread.as_graph(nx.gnp_random_graph(300, 0.02, seed=4, directed=True)))
    import gc

    gc.collect()
    before = len(_POOLS)
    graph = spread.as_graph(nx.gnp_random_graph(300, 0.02, seed=4, directed=True))
    for _ in range(3):  # reused buffers, marks moving on
        again = run(graph)
        assert all(np.array_equal(a, b) for a, b in zip(fresh, again))
    (work,) = next(iter(_POOLS[id(graph)].values()))
    assert work[0][-1] == 3 * 40  # marks given out so far
    work[0][-1] = np.iinfo(np.int32).max - 10  # the next call would overflow: cleared, same answer
    wrapped = run(graph)
    assert all(np.array_equal(a, b) for a, b in zip(fresh, wrapped))
    assert work[0][-1] <= 40  # cleared and counted afresh (how many depends on how the trials were split)
    del graph, work
    import gc

    gc.collect()
    assert len(_POOLS) == before  # the work arrays go with their graph


def test_a_forked_child_can_simulate_after_its_parent_did():
    """The kept worker threads do not survive a fork: the child's pool starts empty, not with
    'idle' threads that do not exist (which would leave its first simulation waiting forever)."""
    import multiprocessing

    graph = nx.karate_club_graph()
    model = spread.SIR(beta=0.1, gamma=0.2)
    here = spread.simulate(graph, model, seeds=[0], trials=30, seed=2, workers=2).final_counts
    with multiprocessing.get_context("fork").Pool(1) as pool:
        there = pool.apply_async(_final_counts_in_child, (graph, model)).get(timeout=120)
    assert here.equals(there)


def _final_counts_in_child(graph, model):
    return spread.simulate(graph, model, seeds=[0], trials=30, seed=2, workers=2).final_counts


@pytest.mark.parametrize("seed", [0, 1, 12345, 2**32 - 1, 2**32, 2**63 + 5, 10**30, None])
def test_trial_states_are_numpys_seed_sequence_words(seed):
    # trial i's stream is word i of SeedSequence(seed).generate_state: the vectorised copy must agree
    from diffusio.spread.rng import generate_state64, trial_states

    sequence = np.random.SeedSequence(seed)
    for n in (1, 2, 3, 5, 1000, 4097):
        assert np.array_equal(generate_state64(sequence.pool, n), sequence.generate_state(n, np.uint64))
    if seed is not None:
        assert np.array_equal(trial_states(seed, 777), np.random.SeedSequence(seed).generate_state(777, np.uint64))


@pytest.mark.parametrize("p", [0.0, 5e-324, 1e-17, 2**-53, 0.05, 1 / 3, 0.5, 1 - 2**-53, 1.0])
def test_the_cascades_integer_test_is_uniform_below_p(p):
    # the cascade kernels draw a live edge with an integer test on the draw's 53 bits: it must be
    # exactly uniform() < p, draw by draw, or a seed would give other cascades than before
    from numba import njit

    from diffusio.spread.rng import BITS_DROPPED, GOLDEN, integer_below, scramble, uniform

    @njit
    def both(start, n, p):
        state = np.array([start], np.uint64)
        s = np.uint64(start)
        below = integer_below(p)
        agree = 0
        for _ in range(n):
            s += GOLDEN
            agree += (scramble(s) >> BITS_DROPPED < below) == (uniform(state) < p)
        return agree

    assert both(np.uint64(12345), 20000, p) == 20000
    # and on the 53-bit draws right at the boundary, where a float rounding would show
    k = np.uint64(min(int(np.ceil(p * 2.0**53)), 2**53 - 1))
    for draw in (k - np.uint64(1) if k else k, k):
        assert (draw < integer_below.py_func(p)) == (float(draw) * 2.0**-53 < p)


def test_the_queue_prefetch_reaches_the_machine_code():
    # the cascade kernels' hint (a wrongly named intrinsic fails to compile, a dropped one would cost the
    # large cascades half their speed); compiled here uncached, as numba cannot show cached code.
    # x86 spells it prefetch*, ARM prfm
    from numba import njit

    from diffusio.spread.prefetch import prefetch_queue

    @njit
    def walk(indptr, targets, queue):
        for head in range(queue.size):
            prefetch_queue(indptr, targets, queue, head, queue.size)

    queue = np.arange(40, dtype=np.int32)
    walk(np.arange(41, dtype=np.int64), np.zeros(40, np.int32), queue)
    code = "\n".join(walk.inspect_asm().values()).lower()
    assert "prefetch" in code or "prfm" in code


def test_short_runs_stay_on_the_calling_thread_and_long_ones_go_to_the_pool():
    import threading
    import time

    from diffusio.spread.threads import PROBE, run_interruptibly

    def recorder(pause):
        seen = []

        def run_block(lo, hi):
            seen.append((lo, hi, threading.current_thread() is threading.main_thread()))
            if pause:
                time.sleep(pause * (hi - lo))
        return seen, run_block

    seen, block = recorder(0.0)  # a quick run on one worker: the probe (one trial, then the rest of
    run_interruptibly(block, 1000, workers=1)  # PROBE), then the rest at once, all here
    assert seen == [(0, 1, True), (1, PROBE, True), (PROBE, 1000, True)]
    seen, block = recorder(0.002)  # 1,000 trials of 2 ms: the probe here, the rest in blocks on the pool
    run_interruptibly(block, 1000, workers=2, block_size=256)
    here = [(lo, hi) for lo, hi, on_main in seen if on_main]  # the probe: 16 trials, or fewer when a
    end = here[-1][1]                                         # busy machine makes 2 ms take longer
    assert here[0] == (0, 1) and 1 < end <= PROBE and [b[1] for b in here[:-1]] == [b[0] for b in here[1:]]
    assert seen[:len(here)] == [(lo, hi, True) for lo, hi in here]
    assert sorted((lo, hi) for lo, hi, on_main in seen if not on_main) == \
        list(zip(range(end, 1000, 256), [*range(end + 256, 1000, 256), 1000]))
    seen, block = recorder(0.1)  # trials of 100 ms: only the first runs where Ctrl-C cannot reach it
    run_interruptibly(block, 20, workers=2, block_size=8)
    assert [(lo, hi) for lo, hi, on_main in seen if on_main] == [(0, 1)]
    assert sorted((lo, hi) for lo, hi, _ in seen) == [(0, 1), (1, 9), (9, 17), (17, 20)]


@pytest.mark.slow  # compiles afresh in a subprocess (about 10 s)
def test_the_compile_call_with_ctrl_c_held_compiles_what_the_run_uses(tmp_path):
    # simulate compiles its kernels on zero trials with Ctrl-C held; if that call's arrays typed
    # differently from the real ones, the real compilation would happen later, unprotected
    import subprocess
    import sys

    code = ("import networkx as nx\nfrom diffusio import spread\n"
            "from diffusio.spread.models.cascade import independent_cascade_kernel as k\n"
            "from diffusio.spread.simulate import _hold_final_counts as h\n"
            "spread.simulate(nx.gnp_random_graph(200, 0.05, seed=0), spread.IndependentCascade(p=0.1), seeds=[0],"
            " trials=100, seed=0, workers=1)\nprint(len(k.signatures), len(h.signatures))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env={**__import__("os").environ, "NUMBA_CACHE_DIR": str(tmp_path)})
    assert out.stdout.split() == ["1", "1"], out.stderr

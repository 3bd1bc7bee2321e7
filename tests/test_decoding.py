"""Tests for `textrnn.decoding`: exactness against brute force, equivalences, statistics.

Models here are tiny and defined in the test: a random tanh RNN, a two-layer random RNN
with attention over a context, and table "oracles" whose next-token distribution depends
only on the step and the previous token (KerasHub-style known answers).
"""

import itertools

import numpy as np
import pytest
import tensorflow as tf

from textrnn.decoding import (
    GREEDY_TEMPERATURE,
    BeamSearch,
    DecodeResult,
    Greedy,
    Sampling,
    decode,
    make_strategy,
)
from textrnn.decoding.beam_search import _banned_ngrams
from textrnn.decoding.sampling import apply_repetition_penalty, filter_logits
from textrnn.text.special_tokens import BOS_ID, EOS_ID, PAD_ID

# Chi-square critical values at significance 0.001, by degrees of freedom.
CHI2_CRITICAL_0_001 = {
    1: 10.828,
    2: 13.816,
    3: 16.266,
    4: 18.467,
    5: 20.515,
    8: 26.124,
    15: 37.697,
    24: 51.179,
    35: 66.619,
}


# ----------------------------------------------------------------------------------------
# Tiny models
# ----------------------------------------------------------------------------------------


class TinyRNN:
    """h' = tanh(E[ids] + h U), logits = h' W, with fixed random weights."""

    def __init__(self, vocab=6, hidden=8, seed=0, scale=1.5):
        rng = np.random.default_rng(seed)
        self.vocab, self.hidden = vocab, hidden
        self.E = tf.constant(rng.normal(size=(vocab, hidden)), tf.float32)
        self.U = tf.constant(rng.normal(size=(hidden, hidden)) * 0.6, tf.float32)
        self.W = tf.constant(rng.normal(size=(hidden, vocab)) * scale, tf.float32)

    def step(self, ids, h, context):
        h = tf.tanh(tf.gather(self.E, ids) + h @ self.U)
        return h @ self.W, h

    def initial_state(self, batch, seed=1):
        rng = np.random.default_rng(seed)
        return tf.constant(rng.normal(size=(batch, self.hidden)), tf.float32)


class AttentionRNN:
    """Two tanh layers; the first reads an attention-weighted context vector.

    State is nested, `(h1, (h2,))`; context is `{"memory": [N, S, H], "mask": [N, S]}`.
    """

    def __init__(self, vocab=5, hidden=6, seed=0, scale=1.5):
        rng = np.random.default_rng(seed)
        self.vocab, self.hidden = vocab, hidden

        def w(*shape, s=0.6):
            return tf.constant(rng.normal(size=shape) * s, tf.float32)

        self.E, self.U1, self.C = w(vocab, hidden, s=1.0), w(hidden, hidden), w(hidden, hidden)
        self.V2, self.U2, self.Q = w(hidden, hidden), w(hidden, hidden), w(hidden, hidden)
        self.W = w(hidden, vocab, s=scale)

    def step(self, ids, state, context):
        h1, (h2,) = state
        memory, mask = context["memory"], context["mask"]
        scores = tf.einsum("nsh,nh->ns", memory, h2 @ self.Q)
        attention = tf.nn.softmax(tf.where(mask, scores, float("-inf")))
        read = tf.einsum("ns,nsh->nh", attention, memory)
        h1 = tf.tanh(tf.gather(self.E, ids) + h1 @ self.U1 + read @ self.C)
        h2 = tf.tanh(h1 @ self.V2 + h2 @ self.U2)
        return h2 @ self.W, (h1, (h2,)), attention

    def inputs(self, source_lengths, src_len=4, seed=2):
        rng = np.random.default_rng(seed)
        batch = len(source_lengths)
        mask = np.arange(src_len)[None, :] < np.asarray(source_lengths)[:, None]
        context = {
            "memory": tf.constant(rng.normal(size=(batch, src_len, self.hidden)), tf.float32),
            "mask": tf.constant(mask),
        }
        state = (
            tf.constant(rng.normal(size=(batch, self.hidden)), tf.float32),
            (tf.constant(rng.normal(size=(batch, self.hidden)), tf.float32),),
        )
        return state, context


class TableOracle:
    """Next-token probabilities `table[min(t, T - 1), previous_token]`; state is `t`."""

    def __init__(self, table):
        self.log_table = tf.constant(np.log(np.asarray(table, np.float64)), tf.float32)
        self.vocab = self.log_table.shape[-1]

    def step(self, ids, t, context):
        index = tf.stack([tf.minimum(t, self.log_table.shape[0] - 1), ids], -1)
        return tf.gather_nd(self.log_table, index), t + 1

    def initial_state(self, batch):
        return tf.zeros([batch], tf.int32)


def peaked(vocab, favourite, mass=0.999):
    probs = np.full(vocab, (1 - mass) / (vocab - 1))
    probs[favourite] = mass
    return probs


def sequences_of(result, row, k=None):
    ids, lengths = result.ids.numpy(), result.lengths.numpy()
    ks = range(ids.shape[1]) if k is None else [k]
    return [tuple(ids[row, j, : lengths[row, j]]) for j in ks]


# ----------------------------------------------------------------------------------------
# References: teacher forcing and brute-force enumeration
# ----------------------------------------------------------------------------------------


def _select_rows(structure, rows):
    return tf.nest.map_structure(lambda x: None if x is None else tf.gather(x, rows), structure)


def teacher_force(step_fn, state, start_ids, context, ids, lengths):
    """Feeds `ids [N, T]` through `step_fn`: float64 sums of log-probs, attention, coverage."""
    ids, lengths = np.asarray(ids), np.asarray(lengths)
    n, time = ids.shape
    totals, inputs = np.zeros(n), tf.constant(start_ids, tf.int32)
    attention = []
    for t in range(time):
        outputs = step_fn(inputs, state, context)
        log_probs = tf.nn.log_softmax(outputs[0]).numpy().astype(np.float64)
        valid = t < lengths
        totals += np.where(valid, log_probs[np.arange(n), ids[:, t]], 0.0)
        if len(outputs) == 3:
            attention.append(np.where(valid[:, None], outputs[2].numpy(), 0.0))
        state, inputs = outputs[1], tf.constant(ids[:, t], tf.int32)
    attention = np.stack(attention, 1) if attention else None
    return totals, attention


def check_scores_by_teacher_forcing(step_fn, state, start_ids, context, result):
    batch, n, time = result.ids.shape
    rows = np.repeat(np.arange(batch), n)
    totals, attention = teacher_force(
        step_fn,
        _select_rows(state, rows),
        np.asarray(start_ids)[rows],
        _select_rows(context, rows),
        result.ids.numpy().reshape(batch * n, time),
        result.lengths.numpy().reshape(-1),
    )
    np.testing.assert_allclose(result.scores.numpy().reshape(-1), totals, atol=1e-5)
    if attention is not None:
        np.testing.assert_allclose(
            result.attention.numpy().reshape(attention.shape), attention, atol=1e-6
        )


def normaliser(penalty, alpha=0.6):
    return {
        "none": lambda s, n: s,
        "average": lambda s, n: s / n,
        "gnmt": lambda s, n: s / ((5.0 + n) / 6.0) ** alpha,
    }[penalty]


def has_repeated_ngram(sequence, n):
    grams = [tuple(sequence[i : i + n]) for i in range(len(sequence) - n + 1)]
    return len(grams) != len(set(grams))


def brute_force(
    step_fn,
    state,
    start_id,
    context,
    vocab,
    max_length,
    *,
    end_ids=(EOS_ID,),
    min_length=0,
    penalty="none",
    alpha=0.6,
    beta=0.0,
    source_length=None,
    no_repeat=0,
    capped="prefix",
):
    """Every finished hypothesis of one row, best first: (normalised, log-prob, sequence).

    `capped` as in `BeamSearch`: under "force_end" a hypothesis may only reach the cap
    with an end id; under "rank_last" those cut at the cap come after every ended one.
    """
    non_end = [v for v in range(vocab) if v not in end_ids]
    cut_allowed = capped != "force_end" or not end_ids
    candidates = []
    for length in range(1, max_length + 1):
        last_tokens = (list(end_ids) if length - 1 >= min_length else []) + (
            non_end if length == max_length and cut_allowed else []
        )
        for prefix in itertools.product(non_end, repeat=length - 1):
            for last in last_tokens:
                sequence = prefix + (last,)
                if no_repeat and has_repeated_ngram(sequence, no_repeat):
                    continue
                candidates.append(sequence)
    n = len(candidates)
    ids = np.zeros((n, max_length), np.int32)
    for i, sequence in enumerate(candidates):
        ids[i, : len(sequence)] = sequence
    lengths = np.array([len(s) for s in candidates])
    rows = np.zeros(n, np.int32)
    totals, attention = teacher_force(
        step_fn,
        _select_rows(state, rows),
        np.full(n, start_id),
        _select_rows(context, rows),
        ids,
        lengths,
    )
    normalised = normaliser(penalty, alpha)(totals, lengths)
    if beta:
        coverage = attention.sum(1)  # [n, S]
        real = np.arange(coverage.shape[1]) < source_length
        normalised = normalised + beta * np.where(
            real, np.log(np.clip(coverage.astype(np.float64), 1e-300, 1.0)), 0.0
        ).sum(1)
    order = np.argsort(-normalised, kind="stable")
    if capped == "rank_last":
        cut = np.array([s[-1] not in end_ids for s in candidates])
        order = order[np.argsort(cut[order], kind="stable")]
    return [(normalised[i], totals[i], candidates[i]) for i in order]


# ----------------------------------------------------------------------------------------
# Strategies and validation
# ----------------------------------------------------------------------------------------


def test_make_strategy_builds_each_strategy():
    assert make_strategy("greedy") == Greedy()
    assert make_strategy("beam", width=3, n_best=2) == BeamSearch(width=3, n_best=2)
    assert make_strategy("sample", top_p=0.9, seed=4) == Sampling(top_p=0.9, seed=4)


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: make_strategy("nucleus"), "Expected one of ('greedy', 'beam', 'sample')"),
        (lambda: make_strategy("beam", widht=3), "Valid parameters: ('width', 'n_best'"),
        (lambda: make_strategy("greedy", width=3), "Valid parameters: (none)"),
        (lambda: BeamSearch(width=0), "Received: width=0"),
        (lambda: BeamSearch(width=2, n_best=3), "Received: n_best=3, width=2"),
        (lambda: BeamSearch(n_best=0), "Received: n_best=0, width=5"),
        (lambda: BeamSearch(length_penalty="wu"), "Received: length_penalty='wu'"),
        (lambda: BeamSearch(alpha=float("nan")), "Received: alpha=nan"),
        (lambda: BeamSearch(coverage_penalty=-0.2), "Received: coverage_penalty=-0.2"),
        (lambda: BeamSearch(no_repeat_ngram_size=-1), "Received: no_repeat_ngram_size=-1"),
        (lambda: BeamSearch(capped="truncate"), "Received: capped='truncate'"),
        (lambda: BeamSearch(width=True), "Received: width=True"),
        (lambda: Sampling(temperature=-1.0), "Received: temperature=-1.0"),
        (lambda: Sampling(top_k=-2), "Received: top_k=-2"),
        (lambda: Sampling(top_k=2.5), "Received: top_k=2.5"),
        (lambda: Sampling(top_p=0.0), "Received: top_p=0.0"),
        (lambda: Sampling(top_p=1.5), "Received: top_p=1.5"),
        (lambda: Sampling(seed=2**40), "Received: seed=1099511627776"),
        (lambda: Sampling(repetition_penalty=0.0), "Received: repetition_penalty=0.0"),
    ],
)
def test_invalid_strategies_name_the_received_value(build, message):
    with pytest.raises(ValueError) as error:
        build()
    assert message in str(error.value)


def test_sampling_accepts_scalar_tensors():
    strategy = Sampling(
        temperature=tf.constant(0.5),
        top_k=tf.constant(3),
        top_p=tf.constant(0.9),
        seed=tf.constant(7),
        repetition_penalty=tf.constant(1.2),
    )
    model = TinyRNN()
    result = decode(model.step, model.initial_state(2), [BOS_ID, 4], strategy, 5)
    assert result.ids.shape == (2, 1, 5)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"max_length": 0}, "Received: max_length=0"),
        ({"max_length": 2.0}, "Received: max_length=2.0"),
        ({"min_length": -1}, "Received: min_length=-1"),
        ({"end_ids": ("</s>",)}, "Received: end_ids=('</s>',)"),
        ({"end_ids": (3, 99)}, "below the vocabulary size 6. Received: end_ids=(3, 99)"),
        ({"max_length_ratio": 1.5}, "needs `source_lengths`"),
        ({"max_length_ratio": -1.0, "source_lengths": [2, 2]}, "Received: max_length_ratio=-1.0"),
        ({"max_length_offset": -3}, "Received: max_length_offset=-3"),
        ({"start_ids": [[2, 2]]}, "Expected `start_ids` of shape [batch]"),
        ({"strategy": BeamSearch(coverage_penalty=0.2)}, "coverage penalty needs attention"),
        ({"forbidden_ids": ("<pad>",)}, "Received: forbidden_ids=('<pad>',)"),
        ({"forbidden_ids": (0, 6)}, "below the vocabulary size 6. Received: forbidden_ids=(0, 6)"),
        ({"forbidden_ids": tuple(range(6))}, "forbid every id of the vocabulary (6)"),
    ],
)
def test_invalid_decode_arguments_name_the_received_value(kwargs, message):
    model = TinyRNN()
    arguments = {"strategy": Greedy(), "max_length": 4, "start_ids": [BOS_ID, BOS_ID]}
    arguments.update(kwargs)
    start_ids = arguments.pop("start_ids")
    strategy = arguments.pop("strategy")
    max_length = arguments.pop("max_length")
    with pytest.raises(ValueError) as error:
        decode(model.step, model.initial_state(2), start_ids, strategy, max_length, **arguments)
    assert message in str(error.value)


def test_wrong_strategy_type_is_rejected():
    model = TinyRNN()
    with pytest.raises(TypeError, match="Received: strategy='greedy'"):
        decode(model.step, model.initial_state(1), [BOS_ID], "greedy", 3)


def test_step_fn_with_wrong_outputs_is_rejected():
    def bad_step(ids, state, context):
        return tf.zeros([2, 6])

    with pytest.raises(ValueError, match="Expected `step_fn` to return"):
        decode(bad_step, (), [BOS_ID, BOS_ID], Greedy(), 3)


# ----------------------------------------------------------------------------------------
# Beam search == brute force; equivalences
# ----------------------------------------------------------------------------------------

# Width that keeps every hypothesis of a vocabulary-5 model for 4 steps: at most 4**3 live
# hypotheses, each expanded into 5 candidates.
FULL_WIDTH = 4**3 * 5


@pytest.mark.parametrize("capped", ["force_end", "rank_last", "prefix"])
@pytest.mark.parametrize(
    "penalty, model_seed",
    [("none", 0), ("none", 3), ("gnmt", 0), ("gnmt", 5), ("average", 0), ("average", 4)],
)
def test_full_width_beam_search_equals_brute_force(penalty, model_seed, capped):
    model = TinyRNN(vocab=5, seed=model_seed)
    start_ids, state = [BOS_ID, 4], model.initial_state(2, seed=model_seed + 10)
    strategy = BeamSearch(width=FULL_WIDTH, n_best=3, length_penalty=penalty, capped=capped)
    result = decode(model.step, state, start_ids, strategy, 4)
    for row in range(2):
        expected = brute_force(
            model.step,
            _select_rows(state, [row]),
            start_ids[row],
            None,
            5,
            4,
            penalty=penalty,
            capped=capped,
        )
        # Meaningful only if the reference ranking is not a near tie.
        top = sorted(e[0] for e in expected[:4])
        assert min(np.diff(top)) > 1e-5
        assert sequences_of(result, row) == [e[2] for e in expected[:3]]
        np.testing.assert_allclose(result.scores[row], [e[1] for e in expected[:3]], atol=1e-5)
        np.testing.assert_allclose(
            result.normalized_scores[row], [e[0] for e in expected[:3]], atol=1e-5
        )


@pytest.mark.parametrize("use_source_lengths", [True, False])
def test_full_width_beam_with_coverage_penalty_equals_brute_force(use_source_lengths):
    model = AttentionRNN(vocab=5, seed=1)
    source_lengths = [4, 2]
    state, context = model.inputs(source_lengths)
    strategy = BeamSearch(width=FULL_WIDTH, n_best=2, length_penalty="gnmt", coverage_penalty=0.4)
    result = decode(
        model.step,
        state,
        [BOS_ID, BOS_ID],
        strategy,
        4,
        context=context,
        source_lengths=source_lengths if use_source_lengths else None,
    )
    for row in range(2):
        expected = brute_force(
            model.step,
            _select_rows(state, [row]),
            BOS_ID,
            _select_rows(context, [row]),
            5,
            4,
            penalty="gnmt",
            beta=0.4,
            source_length=source_lengths[row],
        )
        assert expected[0][0] - expected[2][0] > 1e-4
        assert sequences_of(result, row) == [e[2] for e in expected[:2]]
        np.testing.assert_allclose(
            result.normalized_scores[row], [e[0] for e in expected[:2]], atol=1e-5
        )
    check_scores_by_teacher_forcing(model.step, state, [BOS_ID, BOS_ID], context, result)


def test_full_width_beam_with_min_length_end_ids_and_no_repeat_equals_brute_force():
    model = TinyRNN(vocab=5, seed=7, scale=2.5)
    state = model.initial_state(1, seed=3)
    strategy = BeamSearch(
        width=FULL_WIDTH, n_best=2, length_penalty="average", no_repeat_ngram_size=1
    )
    result = decode(model.step, state, [BOS_ID], strategy, 4, min_length=1, end_ids=(3, 0))
    expected = brute_force(
        model.step,
        state,
        BOS_ID,
        None,
        5,
        4,
        end_ids=(3, 0),
        min_length=1,
        penalty="average",
        no_repeat=1,
    )
    assert expected[0][0] - expected[2][0] > 1e-4
    assert sequences_of(result, 0) == [e[2] for e in expected[:2]]
    np.testing.assert_allclose(result.scores[0], [e[1] for e in expected[:2]], atol=1e-5)


def test_early_stop_bound_is_honest_with_average_length_penalty():
    # Ending at once scores log(0.75) = -0.29. The other branch pays log(0.25) = -1.39 for
    # its first token and almost nothing for ten more, ending at an average of -0.13: a
    # stop rule comparing raw live scores with finished normalised ones would miss it.
    vocab, steps = 6, 12
    table = np.tile(peaked(vocab, 4, mass=0.9999), (steps, vocab, 1))
    table[0, BOS_ID] = [1e-6, 1e-6, 1e-6, 0.75, 0.25 - 4e-6, 1e-6]
    table[10:, 4] = peaked(vocab, EOS_ID, mass=0.9999)
    oracle = TableOracle(table)
    for penalty, expected_length in [("average", 11), ("none", 1)]:
        strategy = BeamSearch(width=2, length_penalty=penalty)
        result = decode(oracle.step, oracle.initial_state(1), [BOS_ID], strategy, steps)
        assert result.lengths[0, 0] == expected_length, penalty


def test_beam_search_stops_as_soon_as_no_live_hypothesis_can_win():
    oracle = TableOracle(np.tile(peaked(6, EOS_ID, mass=0.99999), (1, 6, 1)))
    calls = []

    def counting_step(ids, state, context):
        calls.append(1)
        return oracle.step(ids, state, context)

    for penalty in ["none", "gnmt", "average"]:
        calls.clear()
        result = decode(
            counting_step,
            oracle.initial_state(2),
            [BOS_ID, 4],
            BeamSearch(width=4, length_penalty=penalty),
            50,
        )
        assert len(calls) == 1, penalty
        assert result.lengths.numpy().tolist() == [[1], [1]]


def _never_ending_oracle():
    never_end = np.tile(peaked(6, 4, mass=0.6), (1, 6, 1))
    never_end[..., EOS_ID] = 1e-9
    return TableOracle(never_end / never_end.sum(-1, keepdims=True))


@pytest.mark.parametrize("capped", ["rank_last", "prefix"])
def test_hypotheses_cut_at_max_length_are_returned_when_none_ends(capped):
    oracle = _never_ending_oracle()
    strategy = BeamSearch(3, n_best=3, capped=capped)
    result = decode(oracle.step, oracle.initial_state(1), [BOS_ID], strategy, 5)
    assert result.lengths.numpy().tolist() == [[5, 5, 5]]
    hypotheses = sequences_of(result, 0)
    assert hypotheses[0] == (4, 4, 4, 4, 4) and len(set(hypotheses)) == 3
    assert EOS_ID not in result.ids.numpy()


def test_force_end_makes_every_hypothesis_end_with_a_scored_end_id_at_the_cap():
    oracle = _never_ending_oracle()
    strategy = BeamSearch(3, n_best=3, capped="force_end")
    result = decode(oracle.step, oracle.initial_state(1), [BOS_ID], strategy, 5)
    assert result.lengths.numpy().tolist() == [[5, 5, 5]]
    hypotheses = sequences_of(result, 0)
    assert hypotheses[0] == (4, 4, 4, 4, EOS_ID) and len(set(hypotheses)) == 3
    assert all(h[-1] == EOS_ID for h in hypotheses)
    check_scores_by_teacher_forcing(oracle.step, oracle.initial_state(1), [BOS_ID], None, result)
    # The forced end id (probability about 1e-9) is paid for.
    assert result.scores[0, 0] < np.log(1e-9) + 1


@pytest.mark.parametrize(
    "capped, expected",
    [
        ("prefix", [(4, 4, 4), (EOS_ID,)]),
        ("rank_last", [(EOS_ID,), (4, 4, 4)]),
        ("force_end", [(EOS_ID,), (4, 4, EOS_ID)]),
    ],
)
def test_capped_rule_decides_between_a_cut_and_an_ended_hypothesis(capped, expected):
    # Ending at once costs log(0.3); the other branch pays log(0.7) and then almost
    # nothing, but never ends by itself within the cap of 3.
    vocab = 6
    table = np.tile(peaked(vocab, 4, mass=1 - 1e-6), (3, vocab, 1))
    table[0, BOS_ID] = [1e-7, 1e-7, 1e-7, 0.3, 0.7 - 4e-7, 1e-7]
    oracle = TableOracle(table)
    strategy = BeamSearch(width=2, n_best=2, length_penalty="none", capped=capped)
    result = decode(oracle.step, oracle.initial_state(1), [BOS_ID], strategy, 3)
    assert sequences_of(result, 0) == expected
    check_scores_by_teacher_forcing(oracle.step, oracle.initial_state(1), [BOS_ID], None, result)


def test_without_end_ids_every_capped_rule_gives_the_same_hypotheses():
    model = TinyRNN(vocab=5, seed=2)
    state = model.initial_state(2, seed=4)
    results = [
        decode(model.step, state, [BOS_ID, 4], BeamSearch(4, n_best=2, capped=c), 6, end_ids=())
        for c in ("force_end", "rank_last", "prefix")
    ]
    for other in results[1:]:
        np.testing.assert_array_equal(other.ids, results[0].ids)
        np.testing.assert_array_equal(other.scores, results[0].scores)


def test_beam_width_one_equals_greedy_exactly():
    model = TinyRNN(seed=2)
    state, start_ids = model.initial_state(5, seed=4), [BOS_ID, 4, 5, 0, 1]
    greedy = decode(model.step, state, start_ids, Greedy(), 12, min_length=2)
    assert len(set(greedy.lengths.numpy()[:, 0])) > 1  # rows end at different steps
    for penalty in ["none", "gnmt"]:
        beam = decode(
            model.step, state, start_ids, BeamSearch(1, length_penalty=penalty), 12, min_length=2
        )
        np.testing.assert_array_equal(beam.ids, greedy.ids)
        np.testing.assert_array_equal(beam.lengths, greedy.lengths)
        np.testing.assert_array_equal(beam.scores, greedy.scores)


@pytest.mark.parametrize(
    "strategy",
    [
        Sampling(top_k=1, seed=3),
        Sampling(temperature=0.0),
        Sampling(temperature=1e-7, seed=5),
        Sampling(temperature=tf.constant(0.0)),
        Sampling(temperature=1e-3, seed=9),
    ],
)
def test_sampling_limits_equal_greedy(strategy):
    model = TinyRNN(seed=2)
    state, start_ids = model.initial_state(5, seed=4), [BOS_ID, 4, 5, 0, 1]
    greedy = decode(model.step, state, start_ids, Greedy(), 12)
    sampled = decode(model.step, state, start_ids, strategy, 12)
    np.testing.assert_array_equal(sampled.ids, greedy.ids)
    np.testing.assert_array_equal(sampled.scores, greedy.scores)
    assert GREEDY_TEMPERATURE <= 1e-6


def test_greedy_picks_the_argmax_at_every_step():
    table = np.tile(peaked(6, 0, mass=0.5), (4, 6, 1))
    table[0, BOS_ID], table[1, 5], table[2, 1] = peaked(6, 5), peaked(6, 1), peaked(6, EOS_ID)
    oracle = TableOracle(table)
    result = decode(oracle.step, oracle.initial_state(1), [BOS_ID], Greedy(), 6)
    assert sequences_of(result, 0) == [(5, 1, EOS_ID)]
    assert result.ids.numpy().tolist() == [[[5, 1, EOS_ID, 0, 0, 0]]]
    np.testing.assert_allclose(result.scores, [[3 * np.log(0.999)]], atol=1e-6)


# ----------------------------------------------------------------------------------------
# Scores, batching, lengths, end ids, context
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "strategy",
    [
        Greedy(),
        Sampling(temperature=1.3, seed=11),
        Sampling(top_p=0.8, top_k=3, seed=2, repetition_penalty=1.5),
        BeamSearch(width=4, n_best=3, no_repeat_ngram_size=2),
    ],
)
def test_scores_equal_teacher_forced_log_probs(strategy):
    model = AttentionRNN(vocab=6, seed=3)
    state, context = model.inputs([4, 3, 1])
    result = decode(
        model.step,
        state,
        [BOS_ID] * 3,
        strategy,
        7,
        min_length=2,
        end_ids=(EOS_ID, 5),
        context=context,
    )
    assert result.attention.shape == (3, result.ids.shape[1], 7, 4)
    check_scores_by_teacher_forcing(model.step, state, [BOS_ID] * 3, context, result)
    ids, lengths = result.ids.numpy(), result.lengths.numpy()
    assert (lengths >= 1).all()
    for b, k in np.ndindex(lengths.shape):
        assert (ids[b, k, lengths[b, k] :] == 0).all()
        ends = np.isin(ids[b, k, : lengths[b, k]], [EOS_ID, 5])
        assert not ends[:2].any()  # min_length
        assert not ends[:-1].any()  # nothing after an end token
    if isinstance(strategy, BeamSearch):
        normalized = result.normalized_scores.numpy()
        assert (np.diff(normalized, axis=1) <= 0).all()  # best first
        for b in range(3):
            assert len(set(sequences_of(result, b))) == 3


@pytest.mark.parametrize(
    "strategy",
    [
        Greedy(),
        Sampling(top_k=1),
        BeamSearch(width=3, n_best=2),
        BeamSearch(width=3, n_best=3, length_penalty="average", coverage_penalty=0.3),
    ],
)
def test_batched_decoding_equals_each_row_alone(strategy):
    model = AttentionRNN(vocab=6, seed=4)
    source_lengths = [4, 1, 3, 2]
    state, context = model.inputs(source_lengths, seed=5)
    start_ids = [BOS_ID, 4, 5, 1]
    options = {
        "min_length": 1,
        "source_lengths": source_lengths,
        "max_length_ratio": 1.0,
        "max_length_offset": 1,
    }
    batched = decode(model.step, state, start_ids, strategy, 8, context=context, **options)
    assert len(set(batched.lengths.numpy()[:, 0])) > 1
    assert (batched.lengths.numpy() <= np.array(source_lengths)[:, None] + 1).all()
    for row in range(4):
        alone = decode(
            model.step,
            _select_rows(state, [row]),
            start_ids[row : row + 1],
            strategy,
            8,
            context=_select_rows(context, [row]),
            **{**options, "source_lengths": source_lengths[row : row + 1]},
        )
        np.testing.assert_array_equal(alone.ids[0], batched.ids[row])
        np.testing.assert_array_equal(alone.lengths[0], batched.lengths[row])
        np.testing.assert_allclose(alone.scores[0], batched.scores[row], atol=1e-5)
        np.testing.assert_allclose(alone.attention[0], batched.attention[row], atol=1e-6)


def test_max_length_ratio_caps_each_row():
    oracle = TableOracle(np.tile(peaked(6, 4), (1, 6, 1)))
    result = decode(
        oracle.step,
        oracle.initial_state(3),
        [BOS_ID] * 3,
        Greedy(),
        20,
        source_lengths=[1, 4, 30],
        max_length_ratio=1.5,
        max_length_offset=2,
    )
    # ceil(1.5) + 2 = 4, ceil(6) + 2 = 8, min(20, 47) = 20.
    assert result.lengths.numpy()[:, 0].tolist() == [4, 8, 20]


@pytest.mark.parametrize("strategy", [Greedy(), Sampling(top_k=1, seed=1), BeamSearch(3)])
def test_min_length_forbids_end_tokens(strategy):
    oracle = TableOracle(np.tile(peaked(6, EOS_ID), (1, 6, 1)))
    for min_length, expected in [(0, 1), (3, 4), (tf.constant(5), 6)]:
        result = decode(
            oracle.step, oracle.initial_state(2), [BOS_ID, 4], strategy, 10, min_length=min_length
        )
        assert result.lengths.numpy()[:, 0].tolist() == [expected, expected]
        assert result.ids.numpy()[0, 0, expected - 1] == EOS_ID


@pytest.mark.parametrize("strategy", [Greedy(), Sampling(top_k=1, seed=1), BeamSearch(3)])
def test_several_end_ids_and_none(strategy):
    # The oracle emits 4, then 5, then EOS, then 4 forever.
    table = np.tile(peaked(6, 4), (5, 6, 1))
    table[1], table[2] = peaked(6, 5), peaked(6, EOS_ID)
    oracle = TableOracle(table)
    for end_ids, expected in [
        ((EOS_ID,), (4, 5, 3)),
        ((EOS_ID, 5), (4, 5)),
        ((), (4, 5, 3, 4, 4, 4)),
    ]:
        result = decode(
            oracle.step, oracle.initial_state(1), [BOS_ID], strategy, 6, end_ids=end_ids
        )
        assert sequences_of(result, 0, 0) == [expected], end_ids


def test_context_is_tiled_once_and_never_reordered():
    model = AttentionRNN(vocab=6, seed=6)
    state, context = model.inputs([4, 2, 3], seed=1)
    context["row"] = tf.range(3)
    width, seen = 3, []

    def recording_step(ids, state, context):
        seen.append(context)
        return model.step(ids, state, context)

    result = decode(
        recording_step, state, [BOS_ID] * 3, BeamSearch(width, n_best=2), 6, context=context
    )
    assert len(seen) >= result.lengths.numpy().max() > 2
    assert all(c is seen[0] for c in seen)  # eagerly: the very same tensors every step
    np.testing.assert_array_equal(seen[0]["row"], np.repeat(np.arange(3), width))
    np.testing.assert_array_equal(seen[0]["memory"], np.repeat(context["memory"], width, 0))


def test_no_repeat_ngram_blocking():
    # The oracle wants "4 5 4 5 ..."; with bigram blocking the bigram (4, 5) appears once.
    table = np.tile(peaked(6, 4, mass=0.6), (1, 6, 1))
    table[0, 4] = peaked(6, 5, mass=0.6)
    oracle = TableOracle(table)
    strategy = BeamSearch(width=2, length_penalty="none", no_repeat_ngram_size=2)
    result = decode(oracle.step, oracle.initial_state(1), [BOS_ID], strategy, 8, end_ids=())
    (sequence,) = sequences_of(result, 0)
    assert len(sequence) == 8 and not has_repeated_ngram(sequence, 2)
    plain = decode(oracle.step, oracle.initial_state(1), [BOS_ID], BeamSearch(2), 8, end_ids=())
    assert has_repeated_ngram(sequences_of(plain, 0)[0], 2)


@pytest.mark.parametrize("n", [1, 2, 3])
def test_banned_ngrams_helper_matches_reference(n):
    rng = np.random.default_rng(n)
    sequences = rng.integers(0, 4, size=(6, 7)).astype(np.int32)
    for t in range(8):
        banned = _banned_ngrams(tf.constant(sequences), tf.constant(t), n, 5).numpy()
        for row in range(6):
            history = [int(v) for v in sequences[row, :t]]
            seen = {tuple(history[i : i + n]) for i in range(t - n + 1)}
            prefix = history[t - n + 1 :] if n > 1 else []
            expected = {v for v in range(5) if t >= n - 1 and tuple(prefix + [v]) in seen}
            assert set(np.flatnonzero(banned[row])) == expected


# ----------------------------------------------------------------------------------------
# Sampling statistics and truncation
# ----------------------------------------------------------------------------------------


def chi_square(counts, probs):
    expected = probs * counts.sum()
    assert expected.min() >= 5, "too few draws for the chi-square approximation"
    return float(((counts - expected) ** 2 / expected).sum())


def test_sampled_sequences_follow_the_model_distribution():
    # Joint frequencies of two-token continuations over 12,000 rows vs. the model.
    model = TinyRNN(vocab=6, seed=8, scale=0.5)
    rows = 12000
    state = tf.repeat(model.initial_state(1, seed=2), rows, axis=0)
    result = decode(model.step, state, tf.fill([rows], BOS_ID), Sampling(seed=123), 2, end_ids=())
    ids = result.ids.numpy()[:, 0, :]
    counts = np.bincount(ids[:, 0] * 6 + ids[:, 1], minlength=36).astype(np.float64)
    pairs = np.array(list(itertools.product(range(6), repeat=2)), np.int32)
    log_probs, _ = teacher_force(
        model.step,
        tf.repeat(state[:1], 36, axis=0),
        np.full(36, BOS_ID),
        None,
        pairs,
        np.full(36, 2),
    )
    probs = np.exp(log_probs)
    critical = CHI2_CRITICAL_0_001[35]
    assert chi_square(counts, probs) < critical
    # The test has power: the same counts are rejected under a flattened distribution.
    flattened = np.sqrt(probs) / np.sqrt(probs).sum()
    assert chi_square(counts, flattened) > critical


@pytest.mark.parametrize(
    "temperature, top_k, top_p",
    [(0.7, 0, 1.0), (1.0, 3, 1.0), (1.0, 0, 0.6), (1.5, 4, 0.8), (1.0, 2, 0.3)],
)
def test_sampling_frequencies_match_the_truncated_distribution(temperature, top_k, top_p):
    model = TinyRNN(vocab=6, seed=9, scale=1.0)
    rows = 6000
    state = tf.repeat(model.initial_state(1, seed=5), rows, axis=0)
    logits = model.step(tf.constant([BOS_ID]), state[:1], None)[0].numpy()[0]
    expected = reference_filter(logits / temperature, top_k, top_p)
    probs = np.exp(expected - expected.max())
    probs /= probs.sum()
    strategy = Sampling(temperature=temperature, top_k=top_k, top_p=top_p, seed=31)
    result = decode(model.step, state, tf.fill([rows], BOS_ID), strategy, 1, end_ids=())
    counts = np.bincount(result.ids.numpy()[:, 0, 0], minlength=6).astype(np.float64)
    support = probs > 0
    assert set(np.flatnonzero(counts)) == set(np.flatnonzero(support))  # exact support
    if support.sum() > 1:
        statistic = chi_square(counts[support], probs[support])
        assert statistic < CHI2_CRITICAL_0_001[int(support.sum()) - 1]


def reference_filter(logits, top_k, top_p):
    """Numpy top-k then top-p (over the renormalised top-k distribution)."""
    order = np.argsort(-logits, kind="stable")
    keep = np.ones(len(logits), bool)
    if top_k > 0:
        keep[top_k:] = False
    if top_p < 1.0:
        sorted_logits = np.where(keep, logits[order], -np.inf)
        probs = np.exp(sorted_logits - sorted_logits.max())
        probs /= probs.sum()
        before = np.concatenate([[0.0], np.cumsum(probs)[:-1]])
        keep &= before < top_p
    out = np.full(len(logits), -np.inf)
    out[order[keep]] = logits[order[keep]]
    return out


def test_filter_logits_matches_reference():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(16, 10)).astype(np.float32) * 2
    jit_filter = tf.function(filter_logits, jit_compile=True)
    for top_k, top_p in [
        (0, 1.0),
        (1, 1.0),
        (3, 1.0),
        (10, 1.0),
        (0, 0.5),
        (0, 0.05),
        (5, 0.7),
        (0, 0.999),
    ]:
        expected = np.stack([reference_filter(row, top_k, top_p) for row in logits])
        for got in [
            filter_logits(logits, top_k, top_p),
            filter_logits(logits, tf.constant(top_k), tf.constant(top_p)),
            jit_filter(logits, tf.constant(top_k), tf.constant(top_p)),
        ]:
            np.testing.assert_array_equal(np.isinf(got.numpy()), np.isinf(expected))
            np.testing.assert_allclose(
                got.numpy()[~np.isinf(expected)], logits[~np.isinf(expected)]
            )


def test_filter_logits_exact_support_with_ties_and_the_nucleus_boundary():
    tied = tf.constant([[1.0, 2.0, 2.0, 2.0, 0.0]])
    kept = np.isfinite(filter_logits(tied, top_k=2).numpy())
    assert kept.tolist() == [[False, True, True, False, False]]  # lower ids win ties
    probs = tf.math.log(tf.constant([[0.1, 0.5, 0.3, 0.1]]))
    # The nucleus is the smallest set whose mass reaches p: {1} up to p=0.5, then {1, 2}
    # up to 0.8, then the tie at 0.1 goes to the lower id.
    for top_p, expected in [(0.45, [1]), (0.55, [1, 2]), (0.79, [1, 2]), (0.85, [0, 1, 2])]:
        assert np.flatnonzero(np.isfinite(filter_logits(probs, top_p=top_p))[0]).tolist() == (
            expected
        ), top_p


def test_repetition_penalty():
    logits = tf.constant([[2.0, -1.0, 0.5]])
    generated = tf.constant([[True, True, False]])
    penalised = apply_repetition_penalty(logits, generated, 2.0).numpy()
    np.testing.assert_allclose(penalised, [[1.0, -2.0, 0.5]])
    # Greedy with a strong penalty walks through the favourites without repeating.
    table = np.tile(np.exp([1.0, 1.5, 1.0, -5.0, 5.0, -5.0]), (1, 6, 1))
    oracle = TableOracle(table / table.sum(-1, keepdims=True))
    strategy = Sampling(temperature=0.0, repetition_penalty=100.0)
    result = decode(oracle.step, oracle.initial_state(1), [BOS_ID], strategy, 5, end_ids=())
    assert sequences_of(result, 0) == [(4, 1, 0, 2, 4)]
    check_scores_by_teacher_forcing(oracle.step, oracle.initial_state(1), [BOS_ID], None, result)


# ----------------------------------------------------------------------------------------
# Graph mode, SavedModel, XLA
# ----------------------------------------------------------------------------------------

STRATEGIES = {
    "greedy": Greedy(),
    "beam": BeamSearch(width=3, n_best=2, no_repeat_ngram_size=2),
    "sample": Sampling(temperature=0.9, top_k=4, top_p=0.95, seed=17, repetition_penalty=1.3),
}


class Decoder(tf.Module):
    """A SavedModel-ready wrapper: weights as variables, decode inside a tf.function."""

    def __init__(self, model, strategy):
        super().__init__()
        self.E, self.U, self.W = (tf.Variable(x) for x in (model.E, model.U, model.W))
        self.strategy = strategy

    def step(self, ids, h, context):
        h = tf.tanh(tf.gather(self.E, ids) + h @ self.U)
        return h @ self.W, h

    @tf.function(
        input_signature=[
            tf.TensorSpec([None], tf.int32),
            tf.TensorSpec([None, 8], tf.float32),
            tf.TensorSpec([], tf.int32),
            tf.TensorSpec([], tf.int32),
        ]
    )
    def __call__(self, start_ids, state, max_length, seed):
        strategy = self.strategy
        if isinstance(strategy, Sampling):
            strategy = Sampling(
                strategy.temperature,
                strategy.top_k,
                strategy.top_p,
                seed,
                strategy.repetition_penalty,
            )
        result = decode(self.step, state, start_ids, strategy, max_length)
        return {"ids": result.ids, "lengths": result.lengths, "scores": result.scores}


@pytest.mark.parametrize("name", ["greedy", "beam", "sample"])
def test_same_ids_eagerly_in_tf_function_and_after_saved_model_reload(name, tmp_path):
    model = TinyRNN(seed=12, scale=0.8)
    state, start_ids = model.initial_state(3, seed=6), tf.constant([BOS_ID, 4, 5])
    strategy = STRATEGIES[name]
    eager = decode(model.step, state, start_ids, strategy, 10)
    traced = tf.function(lambda s, i: decode(model.step, s, i, strategy, 10))(state, start_ids)
    module = Decoder(model, strategy)
    tf.saved_model.save(module, str(tmp_path))
    reloaded = tf.saved_model.load(str(tmp_path))(start_ids, state, tf.constant(10), 17)
    for result in [traced, DecodeResult(**reloaded, normalized_scores=None, attention=None)]:
        np.testing.assert_array_equal(result.ids, eager.ids)
        np.testing.assert_array_equal(result.lengths, eager.lengths)
        np.testing.assert_allclose(result.scores, eager.scores, atol=1e-5)
    assert eager.lengths.numpy().max() > 3
    if name == "sample":
        other_seed = tf.saved_model.load(str(tmp_path))(start_ids, state, tf.constant(10), 18)
        assert not np.array_equal(other_seed["ids"], eager.ids)
    # Stock TensorFlow Serving runs only core ops: every op of the graph (while-loop bodies
    # included) must be a core TensorFlow op.
    graph = module.__call__.get_concrete_function().graph.as_graph_def()
    ops = {node.op for node in graph.node}
    ops |= {node.op for function in graph.library.function for node in function.node_def}
    assert "While" in ops or "StatelessWhile" in ops
    assert not [op for op in ops if not hasattr(tf.raw_ops, op)]


@pytest.mark.parametrize("name", ["greedy", "beam", "sample"])
def test_jit_compiled_decoding(name):
    model = TinyRNN(seed=12, scale=0.8)
    state, start_ids = model.initial_state(3, seed=6), tf.constant([BOS_ID, 4, 5])
    strategy = STRATEGIES[name]
    compiled = tf.function(lambda s, i: decode(model.step, s, i, strategy, 10), jit_compile=True)
    first, second = compiled(state, start_ids), compiled(state, start_ids)
    np.testing.assert_array_equal(first.ids, second.ids)  # reproducible under XLA too
    check_scores_by_teacher_forcing(model.step, state, start_ids, None, first)
    if name != "sample":  # XLA draws other random numbers for the same seed (documented)
        eager = decode(model.step, state, start_ids, strategy, 10)
        np.testing.assert_array_equal(first.ids, eager.ids)
        np.testing.assert_allclose(first.scores, eager.scores, atol=1e-5)


def test_tensor_max_length_gives_the_same_result():
    model = TinyRNN(seed=1)
    state, start_ids = model.initial_state(2), tf.constant([BOS_ID, 4])
    for strategy in STRATEGIES.values():
        fixed = decode(model.step, state, start_ids, strategy, 9)

        @tf.function
        def dynamic(max_length, strategy=strategy):
            return decode(model.step, state, start_ids, strategy, max_length)

        np.testing.assert_array_equal(dynamic(tf.constant(9)).ids, fixed.ids)


@pytest.mark.parametrize("name", ["greedy", "beam", "sample"])
def test_capacity_keeps_shapes_static_while_max_length_changes(name):
    model = TinyRNN(seed=12, scale=0.8)
    state, start_ids = model.initial_state(3, seed=6), tf.constant([BOS_ID, 4, 5])
    strategy = STRATEGIES[name]
    traces = []

    @tf.function(jit_compile=True)
    def compiled(max_length):
        traces.append(1)
        return decode(model.step, state, start_ids, strategy, max_length, capacity=12)

    for max_length in (4, 9, 30):
        result = compiled(tf.constant(max_length))
        assert result.ids.shape[-1] == 12
        assert result.lengths.numpy().max() <= min(max_length, 12)
        # Everything after a row's length is padding.
        mask = np.arange(12)[None, None, :] >= result.lengths.numpy()[..., None]
        assert (result.ids.numpy()[mask] == PAD_ID).all()
        check_scores_by_teacher_forcing(model.step, state, start_ids, None, result)
        if name != "sample":  # XLA draws other random numbers for the same seed
            want = decode(model.step, state, start_ids, strategy, min(max_length, 12))
            n = want.ids.shape[-1]
            np.testing.assert_array_equal(result.ids[..., :n], want.ids)
            np.testing.assert_allclose(result.scores, want.scores, atol=1e-5)
    assert len(traces) == 1  # one trace (and one XLA compilation) for every max_length


def test_capacity_must_be_a_positive_int():
    model = TinyRNN(seed=1)
    state, start_ids = model.initial_state(1), tf.constant([BOS_ID])
    for bad in (0, -3, 2.5, tf.constant(4)):
        with pytest.raises(ValueError, match="capacity"):
            decode(model.step, state, start_ids, Greedy(), 5, capacity=bad)


def test_tensor_width_n_best_and_alpha_give_the_same_result():
    model = AttentionRNN(vocab=5, seed=3)
    state, context = model.inputs([4, 2])
    start_ids = tf.constant([BOS_ID, 4])
    fixed = decode(
        model.step, state, start_ids, BeamSearch(4, n_best=3, alpha=0.8), 6, context=context
    )

    @tf.function(
        input_signature=[tf.TensorSpec([], tf.int32)] * 2 + [tf.TensorSpec([], tf.float32)]
    )
    def dynamic(width, n_best, alpha):
        strategy = BeamSearch(width, n_best=n_best, alpha=alpha)
        return decode(model.step, state, start_ids, strategy, 6, context=context)

    result = dynamic(tf.constant(4), tf.constant(3), tf.constant(0.8))
    for got, want in zip(result, fixed):
        np.testing.assert_allclose(got, want, atol=1e-6)
    assert dynamic(tf.constant(1), tf.constant(1), tf.constant(0.8)).ids.shape[1] == 1
    with pytest.raises(tf.errors.InvalidArgumentError, match="n_best must be <= width"):
        dynamic(tf.constant(2), tf.constant(3), tf.constant(0.8))


# ----------------------------------------------------------------------------------------
# Forbidden ids
# ----------------------------------------------------------------------------------------

FORBIDDEN = (PAD_ID, 1, BOS_ID)  # padding, <unk>, <s>


@pytest.mark.parametrize("strategy", [Greedy(), Sampling(seed=3), BeamSearch(3, n_best=2)])
def test_forbidden_ids_are_never_emitted_and_scores_are_over_the_others(strategy):
    model = TinyRNN(vocab=7, seed=4)
    start = [BOS_ID, 4, 5]
    result = decode(model.step, model.initial_state(3), start, strategy, 6, forbidden_ids=FORBIDDEN)
    lengths = result.lengths.numpy()
    for row in range(3):
        for k in range(lengths.shape[1]):
            tokens = result.ids.numpy()[row, k, : lengths[row, k]]
            assert not set(tokens.tolist()) & set(FORBIDDEN)
            # Teacher-forced reference in numpy: log-softmax over the allowed ids only.
            h = model.initial_state(3).numpy()[row : row + 1]
            previous, expected = start[row], 0.0
            for token in tokens:
                h = np.tanh(model.E.numpy()[previous] + h @ model.U.numpy())
                logits = (h @ model.W.numpy())[0].astype(np.float64)
                logits[list(FORBIDDEN)] = -np.inf
                expected += logits[token] - np.log(np.exp(logits[np.isfinite(logits)]).sum())
                previous = token
            np.testing.assert_allclose(result.scores.numpy()[row, k], expected, rtol=1e-4)


def test_beam_slots_no_allowed_hypothesis_can_fill_stay_empty():
    # Five ids, three forbidden, one step: only two hypotheses exist ("</s>" and "4"), so
    # two of the four n-best slots are empty (length 0, only padding, score -inf). With a
    # -1e9 bias on the forbidden logits instead they held junk at scores near -1e9.
    oracle = TableOracle(np.full((1, 5, 5), 0.2))
    result = decode(
        oracle.step,
        oracle.initial_state(1),
        [BOS_ID],
        BeamSearch(4, n_best=4, length_penalty="none", capped="prefix"),
        1,
        forbidden_ids=FORBIDDEN,
    )
    assert sorted(sequences_of(result, 0)[:2]) == [(EOS_ID,), (4,)]
    np.testing.assert_allclose(result.scores.numpy()[0, :2], np.log(0.5), rtol=1e-6)
    assert result.lengths.numpy()[0, 2:].tolist() == [0, 0]
    assert (result.ids.numpy()[0, 2:] == PAD_ID).all()
    assert np.isneginf(result.scores.numpy()[0, 2:]).all()


@pytest.mark.parametrize("strategy", [Greedy(), Sampling(seed=1), BeamSearch(2)])
def test_a_row_with_nothing_to_emit_stops_without_nan(strategy):
    # Vocabulary of four: <pad>, <unk>, <s> forbidden, </s> blocked by min_length at the
    # first step: nothing can be emitted there.
    oracle = TableOracle(np.full((3, 4, 4), 0.25))
    result = decode(
        oracle.step,
        oracle.initial_state(2),
        [BOS_ID, BOS_ID],
        strategy,
        3,
        min_length=1,
        forbidden_ids=FORBIDDEN,
    )
    assert (result.lengths.numpy() == 0).all()
    assert (result.ids.numpy() == PAD_ID).all()
    assert np.isneginf(result.scores.numpy()).all()
    assert not np.isnan(result.normalized_scores.numpy()).any()

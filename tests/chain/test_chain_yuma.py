"""Yuma Consensus against hand-computed values (numbers worked out on paper in the comments)."""

import numpy as np
import pytest

from sn1.chain import yuma


def W(n, rows):
    m = np.zeros((n, n))
    for i, row in rows.items():
        for j, w in row.items():
            m[i, j] = w
    return m


def test_agreeing_validators_full_trust():
    # uids: 0,1 validators (stake 60/40), 2,3 miners. Both give miner 2 0.75 and miner 3 0.25.
    stake = [60, 40, 0, 0]
    w = W(4, {0: {2: 3, 3: 1}, 1: {2: 0.75, 3: 0.25}})       # row scale does not matter
    r = yuma.epoch(stake, w, [True, True, False, False], emission_total=10)
    np.testing.assert_allclose(r.consensus, [0, 0, 0.75, 0.25])
    np.testing.assert_allclose(r.rank, [0, 0, 0.75, 0.25])
    np.testing.assert_allclose(r.trust, [0, 0, 1, 1])
    np.testing.assert_allclose(r.incentive, [0, 0, 0.75, 0.25])
    # bonds delta column 2: [0.6*0.75, 0.4*0.75] / 0.75 = [0.6, 0.4]; same for column 3
    np.testing.assert_allclose(r.dividends, [0.6, 0.4, 0, 0])
    # half of 10 TAO to miners by incentive, half to validators by dividends
    np.testing.assert_allclose(r.emission, [3.0, 2.0, 3.75, 1.25])


def test_lone_validator_outlier_is_clipped_away():
    # V0 (stake 80) splits 0.5/0.5 between miners 2 and 3; V1 (stake 20) puts everything on miner 4.
    stake = [80, 20, 0, 0, 0]
    w = W(5, {0: {2: 0.5, 3: 0.5}, 1: {4: 1.0}})
    r = yuma.epoch(stake, w, [True, True, False, False, False], emission_total=1)
    # miner 4: only 20% of stake backs any weight > 0 -> consensus 0, V1's weight clipped to 0
    np.testing.assert_allclose(r.consensus, [0, 0, 0.5, 0.5, 0])
    np.testing.assert_allclose(r.rank, [0, 0, 0.4, 0.4, 0])        # 0.8 * 0.5
    np.testing.assert_allclose(r.incentive, [0, 0, 0.5, 0.5, 0])
    np.testing.assert_allclose(r.trust, [0, 0, 1, 1, 0])           # prerank of 4 is 0.2, rank 0
    np.testing.assert_allclose(r.validator_trust, [1, 0, 0, 0, 0])
    np.testing.assert_allclose(r.dividends, [1, 0, 0, 0, 0])       # V1 bonds nothing that earns
    np.testing.assert_allclose(r.emission, [0.5, 0, 0.25, 0.25, 0])


def test_partial_disagreement_three_validators():
    # stakes 45/35/20; weights on miners 3,4: V0 .6/.4, V1 .2/.8, V2 .5/.5
    stake = [45, 35, 20, 0, 0]
    w = W(5, {0: {3: .6, 4: .4}, 1: {3: .2, 4: .8}, 2: {3: .5, 4: .5}})
    r = yuma.epoch(stake, w, [True] * 3 + [False] * 2, emission_total=2)
    # miner 3 sorted: .6 (V0, .45) .5 (V2, .65 >= .5) -> C=.5 ; miner 4: .8 (V1 .35) .5 (V2 .55) -> C=.5
    np.testing.assert_allclose(r.consensus, [0, 0, 0, .5, .5])
    # clipped: V0 .5/.4, V1 .2/.5, V2 .5/.5 ; rank3 = .45*.5+.35*.2+.2*.5 = .395 ; rank4 = .18+.175+.1 = .455
    np.testing.assert_allclose(r.rank, [0, 0, 0, .395, .455])
    # preranks: .27+.07+.1 = .44 ; .18+.28+.1 = .56
    np.testing.assert_allclose(r.trust, [0, 0, 0, .395 / .44, .455 / .56])
    np.testing.assert_allclose(r.incentive, [0, 0, 0, .395 / .85, .455 / .85])
    # D_i = sum_j (S_i W'_ij / rank_j) * rank_j / .85 = (row sum of S_i W'_i) / .85
    np.testing.assert_allclose(r.dividends, [.405 / .85, .245 / .85, .2 / .85, 0, 0])
    np.testing.assert_allclose(r.emission.sum(), 2)
    np.testing.assert_allclose(r.emission[3:], [.395 / .85, .455 / .85])


def test_bonds_are_an_ema():
    # Epoch 1: only V0 (stake 50) weighs miner 2; V1 (stake 50) weighs miner 3. Each column has
    # exactly 50% backing -> consensus = full weight; bonds delta col 2 = [1, 0], col 3 = [0, 1].
    stake = [50, 50, 0, 0]
    permits = [True, True, False, False]
    r1 = yuma.epoch(stake, W(4, {0: {2: 1}, 1: {3: 1}}), permits)
    np.testing.assert_allclose(r1.bonds[:2, 2:], [[1, 0], [0, 1]])
    # Epoch 2: both now weigh only miner 2. delta col 2 = [.5, .5]; EMA (a=.1): .1*[.5,.5] + .9*[1,0]
    # = [.95, .05]; column 3 keeps .9*[0,1] -> normalised [0, 1].
    r2 = yuma.epoch(stake, W(4, {0: {2: 1}, 1: {2: 1}}), permits, r1.bonds)
    np.testing.assert_allclose(r2.bonds[:2, 2:], [[.95, 0], [.05, 1]])
    np.testing.assert_allclose(r2.incentive, [0, 0, 1, 0])
    np.testing.assert_allclose(r2.dividends, [.95, .05, 0, 0])


def test_non_permitted_and_self_weights_ignored():
    stake = [50, 50, 0]
    # uid 1 has no permit: its weights do not count. uid 0's self-weight is removed.
    r = yuma.epoch(stake, W(3, {0: {0: 9, 2: 1}, 1: {1: 1}}), [True, False, False])
    np.testing.assert_allclose(r.incentive, [0, 0, 1])
    np.testing.assert_allclose(r.dividends, [1, 0, 0])


def test_no_weights_no_emission():
    r = yuma.epoch([10, 0], np.zeros((2, 2)), [True, False], emission_total=5)
    assert r.emission.sum() == 0


def test_weighted_median_col():
    stake = np.array([0.3, 0.3, 0.4])
    w = np.array([[0.9, 0.0, 0.2],
                  [0.1, 0.0, 0.2],
                  [0.5, 0.0, 0.1]])
    # col 0: .9 backed by .3, .5 by .7 -> .5 ; col 1: nobody -> 0 ; col 2: .2 backed by .6 -> .2
    np.testing.assert_allclose(yuma.weighted_median_col(stake, w), [0.5, 0.0, 0.2])
    # a higher threshold needs more backing: kappa .8 -> col 0 falls to .1, col 2 to .1
    np.testing.assert_allclose(yuma.weighted_median_col(stake, w, kappa=0.8), [0.1, 0.0, 0.1])


def test_top_k_permits():
    # top 3 of stakes 5, 9, 0, 5, 7: uids 1 (9), 4 (7) and 0 (5; the tie with uid 3 goes to the lower uid)
    np.testing.assert_array_equal(yuma.top_k_permits([5, 9, 0, 5, 7], 3), [True, True, False, False, True])
    # as on chain: up to K neurons, every uid holds a permit, zero stake included
    np.testing.assert_array_equal(yuma.top_k_permits([1, 0, 2], 64), [True, True, True])
    # past K, zero-stake ties go to the lower uids
    np.testing.assert_array_equal(yuma.top_k_permits([0, 0, 3, 0], 3), [True, True, True, False])
    np.testing.assert_array_equal(yuma.top_k_permits([], 3), [])


def test_zero_stake_permit_holder_does_not_sway_consensus():
    # uid 1 holds a permit with zero stake (small subnet) and votes against V0 (stake 10):
    # its weights carry no stake, so consensus, incentive and dividends follow V0 alone.
    stake = [10, 0, 0, 0]
    w = W(4, {0: {2: 1}, 1: {3: 1}})
    r = yuma.epoch(stake, w, yuma.top_k_permits(stake, 64), emission_total=2)
    np.testing.assert_allclose(r.consensus, [0, 0, 1, 0])
    np.testing.assert_allclose(r.incentive, [0, 0, 1, 0])
    np.testing.assert_allclose(r.dividends, [1, 0, 0, 0])
    np.testing.assert_allclose(r.emission, [1, 0, 1, 0])


def test_normalize_max_weight():
    w = yuma.normalize_max_weight([8, 1, 1], 0.5)
    np.testing.assert_allclose(w, [0.5, 0.25, 0.25])
    np.testing.assert_allclose(yuma.normalize_max_weight([1, 3], 1.0), [0.25, 0.75])
    with pytest.raises(ValueError, match="at least 4"):
        yuma.normalize_max_weight([1, 1, 0], 0.25)

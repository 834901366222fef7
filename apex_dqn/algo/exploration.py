"""Exploration policies of the actors and the off-policy correction between them.

This module owns the Ape-X exploration schedule (Horgan et al., 2018: actor i of N explores with
eps_i = eps ** (1 + alpha * i / (N - 1))), epsilon-greedy action selection over a batch of
Q-values, and the importance ratios that reweight an n-step transition from one actor's
behaviour policy to the data-weighted mixture of all actors' behaviour policies
(``BehaviourMixture``, ``mixture_correction_weights``). Numpy only, RNG passed explicitly.
"""

from __future__ import annotations

import numpy as np


def actor_epsilons(num_actors: int, *, eps: float = 0.4, alpha: float = 7.0) -> np.ndarray:
    """The Ape-X per-actor exploration rates.

    Args:
        num_actors: number of actors N, >= 1.
        eps: base epsilon in [0, 1]; actor 0 explores with exactly this rate.
        alpha: spread exponent >= 0; the last actor explores with eps ** (1 + alpha).

    Returns:
        Float64 array of shape [N], eps_i = eps ** (1 + alpha * i / (N - 1)); [eps] when N == 1.

    Raises:
        ValueError: if an argument is out of range.
    """
    if num_actors < 1:
        raise ValueError(f"num_actors must be >= 1, got {num_actors}")
    if not 0.0 <= eps <= 1.0 or alpha < 0.0:
        raise ValueError(f"need eps in [0, 1] and alpha >= 0, got eps={eps}, alpha={alpha}")
    if num_actors == 1:
        return np.array([eps], dtype=np.float64)
    i_N = np.arange(num_actors, dtype=np.float64)
    return eps ** (1.0 + alpha * i_N / (num_actors - 1))


def epsilon_greedy(
    q_NA: np.ndarray, epsilon: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Epsilon-greedy actions for a batch of Q-values.

    With probability ``epsilon`` an action is drawn uniformly from all A actions (the greedy one
    included), otherwise the argmax (first index on ties) is taken.

    Args:
        q_NA: Q-values, shape [N, A].
        epsilon: probability of a uniform random action, in [0, 1].
        rng: source of randomness.

    Returns:
        (actions_N int64, greedy_N bool): the actions, and whether each equals the argmax (a
        random action that happens to equal the argmax counts as greedy).
    """
    num, num_actions = q_NA.shape
    argmax_N = np.argmax(q_NA, axis=1).astype(np.int64)
    explore_N = rng.random(num) < epsilon
    random_N = rng.integers(num_actions, size=num, dtype=np.int64)
    actions_N = np.where(explore_N, random_N, argmax_N)
    return actions_N, actions_N == argmax_N


def mixture_correction_weights(
    epsilon_B: np.ndarray,
    steps_B: np.ndarray,
    later_greedy_B: np.ndarray,
    *,
    all_epsilons: np.ndarray,
    shares: np.ndarray,
    num_actions: int,
    clip: float = 1.0,
) -> np.ndarray:
    """Truncated importance weights from each sample's actor to the mixture of all actors.

    Sample b is an n-step transition (s_t, a_t, sum_{k<m} gamma^k r_{t+k}, s_{t+m}) made by
    actor i with mu_i(a|s) = (1 - eps_i) [a greedy] + eps_i / A. Its return depends on the
    behaviour policy only through a_{t+1} .. a_{t+m-1} (a_t is conditioned on by Q(s_t, a_t)),
    so the ratio to the mixture mu_mix = sum_j share_j mu_j is
        w = prod_{k=1}^{m-1} mu_mix(a_{t+k}|s_{t+k}) / mu_i(a_{t+k}|s_{t+k}),
    and w = 1 for m = 1.

    Assumption: every actor is taken to have the same greedy action at s_{t+k} as actor i.
    Actors act on slightly stale copies of one network, so their greedy actions rarely differ,
    and we do not have the other actors' Q-values anyway. Then a step's ratio depends only on
    whether its action was greedy, with e_mix = sum_j share_j eps_j:
        r_greedy = ((1 - e_mix) + e_mix / A) / ((1 - eps_i) + eps_i / A),
        r_random = e_mix / eps_i,
    and w = r_greedy ** g * r_random ** (m - 1 - g), g the greedy actions among the m - 1.

    Truncation: the product of m - 1 ratios can be as large as (e_mix / eps_i) ** (m - 1)
    (about 95 ** 4 ~ 1e8 for the Ape-X schedule, eps_i = 0.4 ** 8, with uniform shares and
    n = 5), and grows exponentially in m, so untruncated weights make the loss's variance
    explode. As with Retrace's traces c = min(1, ratio) (Munos et al., 2016), w = min(w, clip)
    keeps every weight in [0, clip], so E[(w L)^2] <= clip^2 E[L^2] for any per-sample loss L:
    the variance stays bounded whatever m and the epsilons, at the price of a bias towards the
    samples' own policies. There is no floor: a weight may go to about 0.

    Args:
        epsilon_B: the epsilon eps_i of the actor that produced each sample, shape [B].
        steps_B: m, the rewards summed (>= 1; 0, e.g. rows from an old snapshot, counts as
            1), shape [B].
        later_greedy_B: g, greedy actions among a_{t+1} .. a_{t+m-1}, shape [B].
        all_epsilons: every actor's epsilon, shape [J].
        shares: each actor's share of the data, >= 0, summing to 1, shape [J].
        num_actions: number of actions A, >= 1.
        clip: the largest weight, > 0 (``np.inf``: no truncation).

    Returns:
        Float32 weights in [0, clip], shape [B].
    """
    eps_B = np.asarray(epsilon_B, dtype=np.float64)
    # e_mix = sum_j share_j eps_j: the mixture's chance of a uniformly random action.
    e_mix = float(np.dot(np.asarray(shares, dtype=np.float64), all_epsilons))
    # P(a greedy) = (1 - eps) + eps / A under an epsilon-greedy policy, >= 1 / A > 0.
    r_greedy_B = ((1.0 - e_mix) + e_mix / num_actions) / ((1.0 - eps_B) + eps_B / num_actions)
    # P(a non-greedy) = eps / A; the 1 / A cancels. With eps_i = 0 a non-greedy action cannot
    # happen: its ratio is set to 1 rather than divided by zero.
    safe_B = np.where(eps_B > 0.0, eps_B, 1.0)
    r_random_B = np.where(eps_B > 0.0, e_mix / safe_B, 1.0)
    later_B = np.maximum(np.asarray(steps_B, dtype=np.int64) - 1, 0)  # m - 1 later actions
    greedy_B = np.minimum(np.asarray(later_greedy_B, dtype=np.int64), later_B)
    weight_B = r_greedy_B**greedy_B * r_random_B ** (later_B - greedy_B)
    return np.minimum(weight_B, clip).astype(np.float32)


class BehaviourMixture:
    """The mixture of the actors' behaviour policies that the learner's data comes from.

    Each actor's share of the data is estimated from the epsilons of the samples the learner
    draws (``observe``): per actor, an exponentially decayed count of its samples, decayed by
    ``decay`` once per observed batch (``decay=1`` keeps cumulative counts), so the shares
    follow slow changes such as an actor that restarts or slows down. Before any observation
    the shares are uniform. ``weights`` gives the corrected, truncated importance weights of a
    batch (``mixture_correction_weights``). Not thread-safe: call both from one thread.
    """

    def __init__(
        self,
        all_epsilons: np.ndarray,
        *,
        num_actions: int,
        decay: float = 0.999,
        clip: float = 1.0,
    ) -> None:
        """Starts with uniform shares.

        Args:
            all_epsilons: every actor's epsilon, shape [J], J >= 1.
            num_actions: number of actions A, >= 1.
            decay: factor applied to the counts before each observed batch, in (0, 1]; the
                counts cover about 1 / (1 - decay) batches (1000 by default).
            clip: the largest weight, > 0.

        Raises:
            ValueError: if an argument is out of range.
        """
        eps_J = np.asarray(all_epsilons, dtype=np.float64).reshape(-1)
        if eps_J.size < 1 or num_actions < 1:
            raise ValueError(f"need >= 1 epsilon and num_actions >= 1, got {eps_J}, {num_actions}")
        if not (0.0 < decay <= 1.0 and clip > 0.0):
            raise ValueError(f"need decay in (0, 1] and clip > 0, got {decay}, {clip}")
        self._eps_J = eps_J
        # Sorted epsilons and their actor indices, for nearest-value matching.
        self._order_J = np.argsort(eps_J, kind="stable")
        self._sorted_J = eps_J[self._order_J]
        self._num_actions = int(num_actions)
        self._decay = float(decay)
        self._clip = float(clip)
        self._counts_J = np.zeros(eps_J.size, dtype=np.float64)

    def actor_of(self, epsilon_B: np.ndarray) -> np.ndarray:
        """The index into ``all_epsilons`` of the nearest epsilon to each entry (int64, [B])."""
        eps_B = np.asarray(epsilon_B, dtype=np.float64).reshape(-1)
        last = self._sorted_J.size - 1
        pos_B = np.searchsorted(self._sorted_J, eps_B)
        # Of the neighbours below and above in sorted order, the nearer (the lower on a tie).
        lo_B, hi_B = np.clip(pos_B - 1, 0, last), np.clip(pos_B, 0, last)
        above_B = np.abs(self._sorted_J[hi_B] - eps_B) < np.abs(self._sorted_J[lo_B] - eps_B)
        return self._order_J[np.where(above_B, hi_B, lo_B)]

    def observe(self, epsilon_B: np.ndarray) -> None:
        """Counts the samples of one learner batch per actor (matched by nearest epsilon)."""
        actor_B = self.actor_of(epsilon_B)
        self._counts_J *= self._decay
        self._counts_J += np.bincount(actor_B, minlength=self._eps_J.size)

    def shares(self) -> np.ndarray:
        """Each actor's share of the observed samples, summing to 1 (float64, [J]); uniform
        before any observation."""
        total = self._counts_J.sum()
        if total <= 0.0:
            return np.full(self._eps_J.size, 1.0 / self._eps_J.size)
        return self._counts_J / total

    def weights(
        self, epsilon_B: np.ndarray, steps_B: np.ndarray, later_greedy_B: np.ndarray
    ) -> np.ndarray:
        """``mixture_correction_weights`` of a batch under the current shares (float32, [B])."""
        return mixture_correction_weights(
            epsilon_B,
            steps_B,
            later_greedy_B,
            all_epsilons=self._eps_J,
            shares=self.shares(),
            num_actions=self._num_actions,
            clip=self._clip,
        )

"""The run's seed tree: every random stream of a run derived from the one ``seed``.

All seeds come from one ``numpy.random.SeedSequence`` rooted at ``cfg.seed``: a component's seed
is the sequence's state under a spawn key naming its role and index (actor 3, shard 1, ...), and
the seeds of an actor's environments are drawn from that actor's seed in turn. Streams of
different roles, indices, resumes and resets are therefore independent, and environments do not
share seeds (two of n 32-bit environment seeds coincide with probability about n**2 / 2**33:
5e-7 for 64 environments), unlike offsets such as ``seed + index``, under which actor 0's
second environment replays actor 1's first. Numpy only.
"""

from __future__ import annotations

import numpy as np

# Spawn-key roots of the roles; new roles take new numbers, so existing streams never move.
ACTOR, SHARD, EVALUATOR, LEARNER = 0, 1, 2, 3


def derive(seed: int, *path: int) -> int:
    """A 63-bit seed for the stream ``path`` (e.g. ``(ACTOR, index, generation)``) of the run
    seeded with ``seed``; equal arguments give equal seeds, any difference an unrelated one."""
    state = np.random.SeedSequence(int(seed), spawn_key=tuple(int(p) for p in path))
    return int(state.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


def actor_seed(seed: int, index: int, generation: int = 0) -> int:
    """Actor ``index``'s seed; ``generation`` (the run's resumes) gives a resumed run new
    episodes rather than the ones it already played."""
    return derive(seed, ACTOR, index, generation)


def shard_seed(seed: int, shard: int) -> int:
    """Replay shard ``shard``'s sampling seed."""
    return derive(seed, SHARD, shard)


def evaluator_seed(seed: int, generation: int = 0) -> int:
    """The evaluator's seed (its episodes' env seeds come from it); ``generation`` as for
    actors, so a resumed run evaluates on new episodes."""
    return derive(seed, EVALUATOR, generation)


def env_seeds(seed: int, num_envs: int, reset: int = 0) -> list[int | None]:
    """Distinct seeds for the ``num_envs`` environments of a component seeded with ``seed``,
    for its ``reset``-th reset of all of them (0 at start; an env error or a new evaluation
    takes the next number, so no set of episodes repeats). Typed as gymnasium's vector envs
    take them."""
    state = np.random.SeedSequence(int(seed), spawn_key=(int(reset),))
    # 32-bit: environments that seed numpy's legacy RandomState (MinAtar) accept no more.
    return [int(s) for s in state.generate_state(num_envs, dtype=np.uint32)]

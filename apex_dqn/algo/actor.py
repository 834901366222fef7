"""The Actor: vector environments, a local Q-network copy, n-step transitions and priorities.

An actor steps ``envs_per_actor`` environments in lock-step, choosing all actions with one batched
forward pass and its own Ape-X epsilon. Completed n-step transitions accumulate until
``push_every`` of them are ready; then the actor computes their initial priorities |TD error| with
its own network (Ape-X: priorities are computed where the data is made, so the replay never has to
guess) and hands the batch out. It knows nothing of Ray: the runtime ships its batches and weights.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from apex_dqn.algo.acting_q import abs_td, build_acting_q
from apex_dqn.algo.exploration import actor_epsilons, epsilon_greedy
from apex_dqn.algo.nstep import NStepBuilder, Rows
from apex_dqn.config import ActorsConfig, AlgoConfig, EnvConfig, NetworkConfig
from apex_dqn.core.reports import ActorReport
from apex_dqn.core.rules import ErrorStreak
from apex_dqn.core.seeding import derive, env_seeds
from apex_dqn.core.types import FrameBatch, TransitionBatch
from apex_dqn.envs.factory import life_lost, lives, make_vector_env, training_rewards, true_next_obs


class EnvFailure(RuntimeError):
    """An environment that keeps raising: ``actors.max_env_errors`` errors in a row."""


@dataclass
class _Step:
    """An env step whose forward pass on the new observations is still to come."""

    batch: TransitionBatch
    rows: Rows
    next_obs_N: np.ndarray
    ended_N: np.ndarray


class Actor:
    """One Ape-X actor (see module docstring).

    Args:
        actor_index: i in 0..N-1; sets the epsilon eps_base ** (1 + eps_alpha * i / (N - 1)).
        env: the environment to run.
        network: the Q-network architecture (weights arrive through ``set_weights``).
        algo: gamma and n for the n-step transitions.
        actors: envs per actor, epsilon schedule, push size.
        num_actions: size of the action space.
        obs_shape: shape of one observation.
        seed: seeds the environments and the exploration RNG.
        obs_dtype: dtype observations are kept in (uint8 for Atari frames).
        frame_batches: push ``FrameBatch``es (each frame once, with keys) instead of
            ``TransitionBatch``es; needs [S, H, W] frame-stack observations.
        behaviour: give the transitions the behaviour fields ``learner.actor_correction``
            needs (``TransitionBatch``).
    """

    def __init__(
        self,
        *,
        actor_index: int,
        env: EnvConfig,
        network: NetworkConfig,
        algo: AlgoConfig,
        actors: ActorsConfig,
        num_actions: int,
        obs_shape: tuple[int, ...],
        seed: int,
        obs_dtype: str = "float32",
        frame_batches: bool = False,
        behaviour: bool = False,
    ) -> None:
        self.index = actor_index
        self.epsilon = float(
            actor_epsilons(actors.num_actors, eps=actors.eps_base, alpha=actors.eps_alpha)[
                actor_index
            ]
        )
        self._gamma = algo.gamma
        self._push_every = actors.push_every
        self._rng = np.random.default_rng(seed)
        # numpy for MLPs: faster for a few observations, and the process never imports torch.
        self._net = build_acting_q(
            network, obs_shape=obs_shape, num_actions=num_actions, seed=seed, bf16=actors.amp
        )
        self._env_cfg = env
        self._seed = seed
        self._errors = ErrorStreak(actors.max_env_errors)
        self.env_errors = 0
        self._vector_mode = actors.vector_mode
        # Life loss ends n-step returns (training only) when the Atari config asks for it.
        self._life_loss = env.atari is not None and env.atari.terminal_on_life_loss
        n = actors.envs_per_actor
        self._envs = make_vector_env(env, num_envs=n, mode=self._vector_mode)
        self._obs_N, infos = self._envs.reset(seed=env_seeds(seed, n))
        self._lives_N = lives(infos, n)
        self._nstep = NStepBuilder(
            num_envs=n,
            n=algo.n_step,
            gamma=algo.gamma,
            obs_shape=obs_shape,
            obs_dtype=np.dtype(obs_dtype),
            behaviour=behaviour,
        )
        self._episode_return_N = np.zeros(n, dtype=np.float64)
        self._episode_length_N = np.zeros(n, dtype=np.int64)
        self._pending: list[TransitionBatch] = []
        self._pending_keys: list[tuple[np.ndarray, np.ndarray]] = []
        self._pending_count = 0
        # Frame keys: every frame an env shows gets the next number of this actor's counter;
        # _keys_NS names the frames stacked in each env's current observation.
        self._frame_batches = frame_batches
        self.stream = int.from_bytes(os.urandom(7), "little")
        self._next_key = 0
        self._keys_NS = np.zeros((n, obs_shape[0] if frame_batches else 0), dtype=np.int64)
        self._fresh_keys(np.arange(n))
        self.weights_version = -1
        self.env_steps = 0
        # Q-values of the current observations: chosen actions come from them, and they are
        # the bootstrap values of the transitions that end at these observations.
        self._q_N: np.ndarray | None = None

    def set_weights(self, weights: dict[str, np.ndarray], version: int) -> None:
        """Act with ``weights`` (numpy state dict) from now on."""
        self._net.set_weights(weights)
        self.weights_version = int(version)
        self._q_N = None

    def _q_values(self, obs: np.ndarray) -> np.ndarray:
        return self._net.q_values(obs)

    def run_steps(
        self, num_steps: int, report: ActorReport | None = None
    ) -> tuple[list[TransitionBatch | FrameBatch], ActorReport]:
        """Step all envs ``num_steps`` times; return the full push batches and the report.

        The steps, episodes, transitions and env errors are added to ``report`` (a new one if
        None), and its ``weights_version`` set: the actor worker passes the report of its whole
        call. Transitions beyond the last full batch stay buffered for the next call.
        """
        report = ActorReport() if report is None else report
        for _ in range(num_steps):
            self._step_once(report)
        steps = num_steps * len(self._obs_N)
        report.env_steps += steps
        report.weights_version = self.weights_version
        self.env_steps += steps
        return self._take_full_batches(), report

    def _step_once(self, report: ActorReport) -> None:
        step = self._begin_step(report)
        if step is not None:
            self._end_step(step)

    def _begin_step(self, report: ActorReport) -> _Step | None:
        """Act on the current observations and step the envs; build the n-step rows and
        count episodes. Returns what ``_end_step`` needs (None after an env error).

        ``_end_step`` (the forward pass on the new observations) may run in another thread
        while a different actor lane runs this, so only this method touches ``report``.
        """
        q_NA = self._q_values(self._obs_N) if self._q_N is None else self._q_N
        action_N, greedy_N = epsilon_greedy(q_NA, self.epsilon, self._rng)
        try:
            next_obs_N, reward_N, term_N, trunc_N, infos = self._envs.step(action_N)
        except Exception as exc:  # any error of user environment code
            self._q_N = None
            self._recover_from_env_error(exc, report)
            return None
        self._errors.succeeded()
        done_N = term_N | trunc_N
        real_next_N = true_next_obs(next_obs_N, done_N, infos)
        lives_N = lives(infos, len(done_N))
        # A lost life is a terminal for the learner only; the game (and its return) goes on.
        lost_N = life_lost(self._lives_N, lives_N, done_N) if self._life_loss else False
        self._lives_N = lives_N
        obs_keys_NS, next_keys_NS = self._advance_keys(done_N)
        batch, rows = self._nstep.step_rows(
            obs_N=self._obs_N,
            action_N=action_N,
            reward_N=training_rewards(reward_N, self._env_cfg.atari),
            next_obs_N=real_next_N,
            terminated_N=term_N | lost_N,
            truncated_N=trunc_N,
            greedy_N=greedy_N,
            epsilon=self.epsilon,
            value_N=q_NA[np.arange(len(action_N)), action_N],
            obs_keys_N=obs_keys_NS,
            next_keys_N=next_keys_NS,
        )
        report.transitions += len(batch)
        self._episode_return_N += reward_N
        self._episode_length_N += 1
        for i in np.flatnonzero(done_N):
            report.episode_returns.append(float(self._episode_return_N[i]))
            report.episode_lengths.append(int(self._episode_length_N[i]))
        self._episode_return_N[done_N] = 0.0
        self._episode_length_N[done_N] = 0
        return _Step(batch=batch, rows=rows, next_obs_N=next_obs_N, ended_N=done_N | lost_N)

    def _end_step(self, step: _Step) -> None:
        """The forward pass on the new observations (next actions, and the bootstrap values of
        the finished transitions' priorities); queue the transitions for pushing."""
        self._q_N = self._q_values(step.next_obs_N)
        batch = step.batch
        if len(batch):
            batch.priority_B = self._priorities(batch, step.rows, ended_N=step.ended_N)
            self._pending.append(batch)
            if self._frame_batches:
                rows = step.rows
                assert rows.obs_keys_B is not None and rows.next_keys_B is not None
                self._pending_keys.append((rows.obs_keys_B, rows.next_keys_B))
            self._pending_count += len(batch)
        self._obs_N = step.next_obs_N

    def _recover_from_env_error(self, exc: Exception, report: ActorReport) -> None:
        """Replace the vector env after an error: its episodes are dropped, acting goes on.

        The environments of a vector env that raised mid-step are in an unknown state, so they
        are all rebuilt and reset (with a new seed); the n-step builder forgets the unfinished
        episodes. ``actors.max_env_errors`` errors in a row raise ``EnvFailure``.
        """
        self.env_errors += 1
        report.env_errors += 1
        give_up = self._errors.failed()
        while True:
            if give_up:
                raise EnvFailure(
                    f"env.id={self._env_cfg.id!r} raised {self._errors.count} times in a row "
                    f"(actors.max_env_errors={self._errors.limit}); last error: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
            # Closing a broken env may fail too; it is replaced anyway.
            with contextlib.suppress(Exception):
                self._envs.close()
            try:
                self._envs = make_vector_env(
                    self._env_cfg, num_envs=len(self._obs_N), mode=self._vector_mode
                )
                self._obs_N, infos = self._envs.reset(
                    seed=env_seeds(self._seed, len(self._obs_N), reset=self.env_errors)
                )
                self._lives_N = lives(infos, len(self._obs_N))
                break
            except Exception as again:
                exc = again
                self.env_errors += 1
                report.env_errors += 1
                give_up = self._errors.failed()
        self._nstep.reset()
        self._fresh_keys(np.arange(len(self._obs_N)))
        self._episode_return_N[:] = 0.0
        self._episode_length_N[:] = 0

    def _fresh_keys(self, envs_E: np.ndarray) -> None:
        """New episodes in ``envs_E``: their stacks hold the first frame S times."""
        if not self._frame_batches or len(envs_E) == 0:
            return
        new_E = np.arange(self._next_key, self._next_key + len(envs_E), dtype=np.int64)
        self._next_key += len(envs_E)
        self._keys_NS[envs_E] = new_E[:, None]

    def _advance_keys(self, done_N: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Keys of this step's stacks and of the true next stacks; then the next step's."""
        if not self._frame_batches:
            return None, None
        num = len(done_N)
        new_N = np.arange(self._next_key, self._next_key + num, dtype=np.int64)
        self._next_key += num
        # A frame stack shifts one frame out and the new one in (also into a final obs).
        obs_keys_NS = self._keys_NS
        next_keys_NS = np.concatenate([obs_keys_NS[:, 1:], new_N[:, None]], axis=1)
        self._keys_NS = next_keys_NS.copy()
        self._fresh_keys(np.flatnonzero(done_N))  # ended envs show a reset stack next
        return obs_keys_NS, next_keys_NS

    def _take_full_batches(self) -> list[TransitionBatch | FrameBatch]:
        if self._pending_count < self._push_every:
            return []
        merged = TransitionBatch.concatenate(self._pending)
        full = (len(merged) // self._push_every) * self._push_every
        self._pending = [merged.index(slice(full, None))] if full < len(merged) else []
        self._pending_count = len(merged) - full
        slices = [slice(s, s + self._push_every) for s in range(0, full, self._push_every)]
        if not self._frame_batches:
            return [merged.index(part) for part in slices]
        obs_keys = np.concatenate([k for k, _ in self._pending_keys])
        next_keys = np.concatenate([k for _, k in self._pending_keys])
        self._pending_keys = [(obs_keys[full:], next_keys[full:])] if full < len(merged) else []
        return [
            FrameBatch.from_stacks(
                merged.index(part),
                obs_keys_BS=obs_keys[part],
                next_keys_BS=next_keys[part],
                stream=self.stream,
            )
            for part in slices
        ]

    def _priorities(self, batch: TransitionBatch, rows: Rows, *, ended_N: np.ndarray) -> np.ndarray:
        """|TD error| of new transitions from Q-values the actor already computed.

        The learner's double-Q target with the actor's network standing in for both the online
        and the target network (an actor holds no target network), so the bootstrap value is
        max_a Q(s', a). No forward pass of its own (tested equal to a full recomputation):
        Q(s_t, a_t) was computed when acting at t, and s_{t+m} of a window that did not end is
        the observation the actor acts on next, whose Q-values ``_q_N`` holds. Only a truncated
        episode's final observation needs a forward pass.
        """
        next_v_B = np.zeros(len(batch), dtype=np.float64)
        boot_B = ~batch.done_B
        acting_B = boot_B & ~np.asarray(ended_N, dtype=bool)[rows.env_B]
        assert self._q_N is not None
        next_v_B[acting_B] = self._q_N[rows.env_B[acting_B]].max(axis=1)
        final_B = boot_B & ~acting_B
        if final_B.any():
            next_v_B[final_B] = self._q_values(batch.next_obs_B[final_B]).max(axis=1)
        return abs_td(
            q_taken_B=rows.value_B,
            next_v_B=next_v_B,
            return_B=batch.return_B,
            discount_B=batch.discount_B,
            done_B=batch.done_B,
        )

    def close(self) -> None:
        """Close the environments."""
        self._envs.close()


class PipelinedActor:
    """An actor whose envs form two lanes (two ``Actor``s with half the envs each): while one
    lane steps its envs, the other's forward pass on its new observations runs in a helper
    thread (``actors.pipeline``).

    Env stepping holds the GIL, but torch's forward pass releases it, so the two overlap when a
    second core has room (measured on Pong: benchmarks/throughput.py, docs/atari.md). Each lane is
    a whole actor (own env seeds, n-step builder and frame stream) with this actor's epsilon;
    both act with the same weights. The interface is ``Actor``'s.
    """

    def __init__(self, *, actors: ActorsConfig, seed: int, **kwargs: Any) -> None:
        n = actors.envs_per_actor  # >= 2 with actors.pipeline (ActorsConfig checks)
        sizes = (n - n // 2, n // 2)
        seeds = (seed, derive(seed, 1))
        self.lanes = [
            Actor(actors=dataclasses.replace(actors, envs_per_actor=size), seed=lane_seed, **kwargs)
            for size, lane_seed in zip(sizes, seeds, strict=True)
        ]
        self.index = self.lanes[0].index
        self.epsilon = self.lanes[0].epsilon
        self.weights_version = -1
        self.env_steps = 0
        self._pool = ThreadPoolExecutor(1, "forward")

    @property
    def env_errors(self) -> int:
        return sum(lane.env_errors for lane in self.lanes)

    def set_weights(self, weights: dict[str, np.ndarray], version: int) -> None:
        """Act with ``weights`` from now on (both lanes)."""
        for lane in self.lanes:
            lane.set_weights(weights, version)
        self.weights_version = int(version)

    def run_steps(
        self, num_steps: int, report: ActorReport | None = None
    ) -> tuple[list[TransitionBatch | FrameBatch], ActorReport]:
        """Step all envs of both lanes ``num_steps`` times; as ``Actor.run_steps``."""
        report = ActorReport() if report is None else report
        previous: tuple[Actor, _Step] | None = None
        for _ in range(num_steps):
            for lane in self.lanes:
                forward: Future | None = None
                if previous is not None:
                    forward = self._pool.submit(previous[0]._end_step, previous[1])
                step = lane._begin_step(report)
                if forward is not None:
                    forward.result()
                previous = (lane, step) if step is not None else None
        if previous is not None:
            previous[0]._end_step(previous[1])
        steps = num_steps * sum(len(lane._obs_N) for lane in self.lanes)
        report.env_steps += steps
        report.weights_version = self.weights_version
        self.env_steps += steps
        batches: list[TransitionBatch | FrameBatch] = []
        for lane in self.lanes:
            batches += lane._take_full_batches()
        return batches, report

    def close(self) -> None:
        """Close both lanes' environments and the helper thread."""
        self._pool.shutdown()
        for lane in self.lanes:
            lane.close()

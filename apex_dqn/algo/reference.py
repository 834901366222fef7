"""Ape-X DQN in one function, top to bottom: documentation of the algorithm and a test oracle.

``run_reference`` is Ape-X (Horgan et al. 2018) as one sequential loop. Actors act
epsilon-greedily, each with its own epsilon and the weights it pulled last, turn their steps
into n-step transitions with initial priorities |TD error| and push them into a prioritized
replay; the learner samples prioritized batches, makes the double-DQN update that
``reference_update`` writes out in torch, writes the new priorities back and publishes its
weights. The other pieces are the project's own (``NStepBuilder``, ``PrioritizedReplay``,
``build_q_network``, ``epsilon_greedy``, the env helpers, the seed tree); what is written out
here is the update and the control flow that ``actor.Actor`` and the Ray hosts spread over
processes.

One process and one thread, no Ray, tracker or checkpoints. It differs from the runtimes thus:

- It runs in rounds: every actor in turn steps its envs ``actors.steps_per_call`` times, then
  the learner updates until ``learner.max_replay_ratio`` samples per inserted transition (> 0
  here: "as fast as it can" means nothing in one thread). So weights change only between
  rounds, and ``actors.min_replay_ratio`` never holds actors back.
- One replay of ``replay.capacity``: shards are by design one prioritized replay over their
  union (``replay.sharded``). It stores plain ``TransitionBatch``es, also where actors push
  frame-deduplicated ``FrameBatch``es (Atari with ``replay.frame_dedup``).
- The parameter server is a variable, set every ``learner.publish_every`` updates; an actor
  copies it every ``actors.sync_every`` of its env steps, counted across rounds as the Ray
  actor host counts them.
- One learner, in float32 on ``learner.device``: ``learner.num_learners``, ``amp``,
  ``compile``, ``pin_memory`` and ``actor_correction`` (with the transitions' behaviour
  fields) are ignored, and an update with a non-finite loss is made where ``Learner`` skips it.
- Envs are gymnasium's sync vector envs whatever ``actors.vector_mode``, and
  ``actors.pipeline`` (two lanes with seeds of their own) is ignored; an env that raises ends
  the run; one greedy evaluation at the end.

Each actor has a vector env of its own, rather than being one sub-env of a shared one, and
keeps what a real actor keeps (seeds, exploration RNG, weights, n-step state): so its
transitions are exactly those of ``actor.Actor`` and of the roles the runtimes run. The
learner starts from ``Learner``'s weights, and ``reference_update`` is ``Learner.step`` bit for
bit on the CPU (tests/unit/test_reference.py checks all three). Beyond the list above, its
learning differs from the runtimes' in one way: they keep sample requests in flight, so a batch
may be drawn before the previous one's priorities are back.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from apex_dqn.algo.acting_q import abs_td, build_acting_q
from apex_dqn.algo.evaluator import Evaluator
from apex_dqn.algo.exploration import actor_epsilons, epsilon_greedy
from apex_dqn.algo.networks import build_q_network, get_weights
from apex_dqn.algo.nstep import NStepBuilder
from apex_dqn.algo.torch_compat import resolve_device
from apex_dqn.config import Config
from apex_dqn.core import seeding
from apex_dqn.core.rules import ReplayRatioGate
from apex_dqn.core.types import Sample, TransitionBatch
from apex_dqn.envs.factory import (
    EnvInfo,
    inspect_env,
    life_lost,
    lives,
    make_vector_env,
    training_rewards,
    true_next_obs,
)
from apex_dqn.replay import PrioritizedReplay


@dataclass
class ReferenceResult:
    """What ``run_reference`` did.

    Attributes:
        env_steps: environment steps, all actors' envs together.
        learner_steps: updates made.
        transitions: n-step transitions pushed into the replay.
        episode_returns: undiscounted returns of the training episodes that ended, in order.
        losses: every update's loss, in order.
        mean_q: every update's mean online Q(s, a) over its batch and all actions, in order.
        eval_returns: the final greedy evaluation's returns (empty when ``eval.enabled`` is off).
        weights: the learner's final online weights (numpy state dict).
        replay: the replay; ``replay.state_dict()["storage"]`` holds the stored transitions.
    """

    env_steps: int
    learner_steps: int
    transitions: int
    episode_returns: list[float]
    losses: list[float]
    mean_q: list[float]
    eval_returns: list[float]
    weights: dict[str, np.ndarray]
    replay: PrioritizedReplay


@dataclass
class _Actor:
    """The state of one actor process."""

    epsilon: float
    rng: np.random.Generator
    envs: Any
    net: Any  # numpy (MLP) or torch Q-function: set_weights(weights), q_values(obs)
    nstep: NStepBuilder
    obs_N: np.ndarray
    lives_N: np.ndarray
    return_N: np.ndarray
    since_pull: int = 0
    outbox: list[TransitionBatch] = field(default_factory=list)


def _start_actor(cfg: Config, info: EnvInfo, index: int, epsilon: float) -> _Actor:
    """Actor ``index`` with the seeds ``Actor`` gets (``seeding.actor_seed``), envs reset."""
    seed, n = seeding.actor_seed(cfg.seed, index), cfg.actors.envs_per_actor
    envs = make_vector_env(cfg.env, num_envs=n, mode="sync")
    obs_N, infos = envs.reset(seed=seeding.env_seeds(seed, n))
    return _Actor(
        epsilon=epsilon,
        rng=np.random.default_rng(seed),
        envs=envs,
        net=build_acting_q(
            cfg.network,
            obs_shape=info.obs_shape,
            num_actions=info.num_actions,
            seed=seed,
            bf16=cfg.actors.amp,
        ),
        nstep=NStepBuilder(
            num_envs=n,
            n=cfg.algo.n_step,
            gamma=cfg.algo.gamma,
            obs_shape=info.obs_shape,
            obs_dtype=np.dtype(info.obs_dtype),
        ),
        obs_N=obs_N,
        lives_N=lives(infos, n),
        return_N=np.zeros(n),
    )


def importance_weights_of(sample: Sample, beta: float) -> np.ndarray:
    """w_i = (N * P(i))^-beta / max_j w_j over the batch, P(i) = p_i^alpha / sum_k p_k^alpha and
    N the items stored when the batch was drawn: at beta = 1 the weights undo the bias of
    sampling by priority (the replay's own ``importance_weights`` computes the same)."""
    prob_B = sample.priorities_B / sample.stats.priority_sum
    weight_B = (sample.stats.size * prob_B) ** -beta
    return (weight_B / weight_B.max()).astype(np.float32)


def reference_update(
    online: nn.Module,
    target: nn.Module,
    optimizer: torch.optim.Optimizer,
    batch: TransitionBatch,
    weights_B: np.ndarray,
    cfg: Config,
    step: int,
) -> tuple[float, float, np.ndarray]:
    """One double-DQN update of ``online`` (Adam: ``optimizer``), then of ``target``, on a
    prioritized ``batch`` with its importance weights; ``step`` updates came before it. Returns
    the loss, the mean Q(s, .) and the new priorities |TD error| ([B], float32)."""
    as_tensor = partial(torch.as_tensor, device=next(online.parameters()).device)
    obs_B, next_obs_B = as_tensor(batch.obs_B), as_tensor(batch.next_obs_B)  # [B, *obs_shape]
    action_B = as_tensor(batch.action_B, dtype=torch.int64)
    return_B, discount_B, done_B, w_B = (
        as_tensor(x, dtype=torch.float32)
        for x in (batch.return_B, batch.discount_B, batch.done_B, weights_B)
    )
    learner = cfg.learner
    # Q_online(s, .) and Q_online(s', .) in one forward pass.
    q_BA, next_q_online_BA = online(torch.cat([obs_B, next_obs_B])).split(len(batch))
    with torch.no_grad():
        next_q_target_BA = target(next_obs_B)
        # Double Q: the online network picks a* = argmax_a Q_online(s', a), the target network
        # values it (without double_q the target network picks too: max_a Q_target(s', a)).
        picker_BA = next_q_online_BA if cfg.algo.double_q else next_q_target_BA
        next_v_B = next_q_target_BA.gather(1, picker_BA.argmax(dim=1, keepdim=True)).squeeze(1)
        # The n-step target, bootstrapped unless the episode terminated within the m steps.
        y_B = return_B + (1 - done_B) * discount_B * next_v_B
    q_B = q_BA.gather(1, action_B.unsqueeze(1)).squeeze(1)  # Q_online(s, a)
    # Importance-weighted Huber loss: mean_i w_i * huber(y_i - Q(s_i, a_i)).
    loss = (w_B * F.huber_loss(q_B, y_B, reduction="none", delta=learner.huber_delta)).mean()
    optimizer.zero_grad()
    loss.backward()
    if learner.grad_clip > 0:  # rescale the gradient to a global norm of at most grad_clip
        nn.utils.clip_grad_norm_(online.parameters(), learner.grad_clip)
    optimizer.step()
    # Target network: Polyak averaging target <- target + tau * (online - target) after every
    # update, else a copy of the online network after every target_update_period-th update.
    with torch.no_grad():
        if learner.target_update_tau > 0:
            for target_p, online_p in zip(target.parameters(), online.parameters(), strict=True):
                target_p.lerp_(online_p, learner.target_update_tau)
        elif (step + 1) % learner.target_update_period == 0:
            target.load_state_dict(online.state_dict())
    # The new priorities: |TD error| = |y - Q(s, a)|.
    return loss.item(), q_BA.mean().item(), (y_B - q_B).detach().abs().cpu().numpy()


def run_reference(cfg: Config, *, total_steps: int | None = None) -> ReferenceResult:
    """Train with ``cfg`` for ``total_steps`` env steps (rounded up to whole rounds;
    ``train.max_env_steps`` when None), then evaluate greedily; see the module docstring."""
    if cfg.learner.max_replay_ratio <= 0:
        raise ValueError("run_reference learns up to learner.max_replay_ratio, which must be > 0")
    total_steps = cfg.train.max_env_steps if total_steps is None else total_steps
    info = inspect_env(cfg.env)
    epsilons = actor_epsilons(
        cfg.actors.num_actors, eps=cfg.actors.eps_base, alpha=cfg.actors.eps_alpha
    )
    with torch.random.fork_rng(devices=[]):  # Learner's initial weights; global RNG untouched
        torch.manual_seed(cfg.seed)
        online = build_q_network(
            cfg.network, obs_shape=info.obs_shape, num_actions=info.num_actions
        )
    online.to(resolve_device(cfg.learner.device))
    target = copy.deepcopy(online).requires_grad_(False)
    optimizer = torch.optim.Adam(
        online.parameters(), lr=cfg.learner.lr, eps=cfg.learner.adam_eps, fused=True
    )
    replay = PrioritizedReplay(
        capacity=cfg.replay.capacity,
        obs_shape=info.obs_shape,
        obs_dtype=np.dtype(info.obs_dtype),
        alpha=cfg.replay.alpha,
        priority_eps=cfg.replay.priority_eps,
        seed=seeding.shard_seed(cfg.seed, 0),
    )
    published = get_weights(online)  # what the parameter server holds
    actors = [_start_actor(cfg, info, i, float(eps)) for i, eps in enumerate(epsilons)]
    for actor in actors:
        actor.net.set_weights(published)  # the first pull, before the first step
    sync_steps = max(1, cfg.actors.sync_every // cfg.actors.envs_per_actor)  # vector steps
    life_loss = cfg.env.atari is not None and cfg.env.atari.terminal_on_life_loss
    batch_size, push_every = cfg.learner.batch_size, cfg.actors.push_every
    gate = ReplayRatioGate(cfg.learner.max_replay_ratio, samples_per_update=batch_size)
    env_steps = transitions = updates = 0
    episode_returns: list[float] = []
    losses: list[float] = []
    mean_q: list[float] = []
    while env_steps < total_steps:
        # Acting: each actor in turn, for one call's worth of vector steps.
        for actor in actors:
            for _ in range(cfg.actors.steps_per_call):
                if actor.since_pull >= sync_steps:
                    actor.net.set_weights(published)
                    actor.since_pull = 0
                q_NA = actor.net.q_values(actor.obs_N)
                action_N, greedy_N = epsilon_greedy(q_NA, actor.epsilon, actor.rng)
                next_obs_N, reward_N, term_N, trunc_N, infos = actor.envs.step(action_N)
                done_N = term_N | trunc_N
                # An env that ended shows its new episode's first observation; the n-step
                # returns need the final one.
                real_next_N = true_next_obs(next_obs_N, done_N, infos)
                lives_N = lives(infos, len(done_N))
                lost_N = life_lost(actor.lives_N, lives_N, done_N) & life_loss
                actor.lives_N = lives_N
                batch, rows = actor.nstep.step_rows(
                    obs_N=actor.obs_N,
                    action_N=action_N,
                    reward_N=training_rewards(reward_N, cfg.env.atari),
                    next_obs_N=real_next_N,
                    terminated_N=term_N | lost_N,  # a lost life: no bootstrap, game goes on
                    truncated_N=trunc_N,
                    greedy_N=greedy_N,
                    epsilon=actor.epsilon,
                    value_N=q_NA[np.arange(len(action_N)), action_N],
                )
                # Initial priority |G + gamma^m max_a Q(s_t+m, a) - Q(s_t, a_t)| with the
                # actor's weights (it has no target network): Q(s_t, a_t) as computed when
                # a_t was chosen, and every transition completed now has its env's s_t+1 as
                # s_t+m. In float64, as the actor sums it: the same bits.
                next_v_N = actor.net.q_values(real_next_N).max(axis=1).astype(np.float64)
                batch.priority_B = abs_td(
                    q_taken_B=rows.value_B,
                    next_v_B=next_v_N[rows.env_B],
                    return_B=batch.return_B,
                    discount_B=batch.discount_B,
                    done_B=batch.done_B,
                )
                actor.outbox.append(batch)
                actor.return_N += reward_N
                episode_returns += actor.return_N[done_N].tolist()
                actor.return_N[done_N] = 0.0
                actor.obs_N = next_obs_N
                actor.since_pull += 1
            env_steps += cfg.actors.steps_per_call * cfg.actors.envs_per_actor
            # Push whole blocks of push_every transitions; the rest waits for next round.
            pending = TransitionBatch.concatenate(actor.outbox)
            full = len(pending) // push_every * push_every
            replay.add(pending.index(slice(0, full)))
            actor.outbox = [pending.index(slice(full, None))]
            transitions += full

        # Learning: as many updates as the replay ratio allows.
        while len(replay) >= cfg.replay.min_size_to_learn and gate.allows(updates + 1, transitions):
            # beta, the importance-sampling exponent, goes linearly from beta_start to beta_end.
            frac = min(1.0, updates / cfg.replay.beta_anneal_steps)
            beta = cfg.replay.beta_start + frac * (cfg.replay.beta_end - cfg.replay.beta_start)
            # Draws item i with P(i) = p_i^alpha / sum_k p_k^alpha.
            sample = replay.sample(batch_size, beta)
            weights_B = importance_weights_of(sample, beta)
            loss, batch_q, priorities_B = reference_update(
                online, target, optimizer, sample.batch, weights_B, cfg, updates
            )
            replay.update_priorities(sample.ids_B, priorities_B)  # p_i = max(|TD|, eps)
            updates += 1
            losses.append(loss)
            mean_q.append(batch_q)
            if updates % cfg.learner.publish_every == 0:
                published = get_weights(online)
    for actor in actors:
        actor.envs.close()

    eval_returns: list[float] = []
    if cfg.eval.enabled:
        evaluator = Evaluator(
            env=cfg.env,
            network=cfg.network,
            obs_shape=info.obs_shape,
            num_actions=info.num_actions,
            episodes=cfg.eval.episodes,
            seed=seeding.evaluator_seed(cfg.seed),
            epsilon=cfg.eval.epsilon,
        )
        eval_returns = evaluator.evaluate(get_weights(online), updates).returns
        evaluator.close()
    return ReferenceResult(
        env_steps=env_steps,
        learner_steps=updates,
        transitions=transitions,
        episode_returns=episode_returns,
        losses=losses,
        mean_q=mean_q,
        eval_returns=eval_returns,
        weights=get_weights(online),
        replay=replay,
    )

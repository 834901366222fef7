"""The Python API: train a run and act with its checkpoint from Python, not the command line.

    import apex_dqn

    result = apex_dqn.train(["env.id=Acrobot-v1", "train.max_seconds=120"])
    policy = apex_dqn.load_policy(result.run_dir)
    actions_B = policy.act(obs_B)

``train`` takes the command line's overrides (composed with the same ``conf/``) or a ``Config``
and runs the CLI's own path (``apex_dqn.cli.train.train_config``): the same checks, the same
runtimes, the same run directory; a bad value raises ``ConfigError`` naming the key instead of
exiting. ``load_policy`` reads a checkpoint as ``apex-dqn-eval`` does and acts with the
actors' own Q-function (``apex_dqn.algo.acting_q.build_acting_q``).

Hydra is imported only inside ``train`` (through ``apex_dqn.cli.train``), Ray only by a Ray
run, torch only to read a checkpoint or run a convolutional network.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import signal
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from apex_dqn.config import Config, ConfigError

__all__ = ["Policy", "TrainResult", "TrainingFailed", "load_policy", "train"]


@dataclasses.dataclass(frozen=True)
class TrainResult:
    """A finished training run.

    Attributes:
        run_dir: the run directory (absolute): config.yaml, metrics.jsonl, checkpoints, plots.
        summary: the content of its summary.json (``solved``, ``best_eval_return``,
            ``env_steps``, ``wall_s``, ...; docs/usage.md lists every key).
        config: the config the run used (resumed and CPU shares sized to the machine).
        solved: whether a confirmed greedy evaluation reached the target return.
    """

    run_dir: Path
    summary: dict[str, Any]
    config: Config
    solved: bool

    @functools.cached_property
    def weights(self) -> dict[str, np.ndarray]:
        """The online network's final weights, read from checkpoint.pt on first use (torch)."""
        return _read_checkpoint(self.run_dir)[1]

    def policy(self, *, seed: int = 0) -> Policy:
        """The run's final policy (``load_policy(run_dir)``)."""
        return load_policy(self.run_dir, seed=seed)


class TrainingFailed(RuntimeError):
    """A run stopped because a component kept failing (the CLI's exit code 1).

    Attributes:
        run_dir: the run directory; its summary.json and logs say more.
        summary: the run's summary.
    """

    def __init__(self, message: str, run_dir: Path, summary: dict[str, Any]) -> None:
        super().__init__(message)
        self.run_dir = run_dir
        self.summary = summary


def train(
    config: Config | Sequence[str] | None = None,
    *,
    overrides: Sequence[str] = (),
    output_dir: str | os.PathLike[str] | None = None,
) -> TrainResult:
    """Train Ape-X DQN as ``apex-dqn`` would, in this process (the driver) and Ray.

    Args:
        config: a list of Hydra overrides exactly as on the command line (``env=minatar``,
            ``experiment=pong``, ``actors.num_actors=2``), composed with the CLI's ``conf/``; or
            a ``Config``; None for the defaults of ``conf/`` (CartPole-v1 on local Ray).
        overrides: more ``key=value`` overrides, applied after ``config`` (with a ``Config``,
            config groups such as ``env=minatar`` are not available: compose a list instead).
        output_dir: the run directory (default: the config's ``output_dir``, else
            ``outputs/<date>/<time>-<env>-seed<N>`` under the working directory, as the CLI).

    Returns:
        The run directory, summary, final weights and whether it solved.

    Raises:
        ConfigError: a bad key or value (the message names it, as the CLI's one line), an
            unusable environment, or a Ray cluster that cannot host the run; nothing is written.
        TrainingFailed: a component kept failing and the run stopped (outputs are written).

    A run stopped by SIGINT (Ctrl-C) or SIGTERM stops as the CLI's does, with a final
    checkpoint and its outputs; then SIGINT raises ``KeyboardInterrupt`` and SIGTERM
    ``SystemExit(143)``, so that a loop of ``train`` calls stops with it. With a
    ``Config``, the keys it sets differently from ``Config()``'s defaults count as given
    on the command line: they are kept when CPU shares are sized to the machine, and applied on
    top of the saved config when ``resume`` is set. A Ray instance this call starts is shut down
    before it returns, so ``train`` can be called again; one already running (``ray.init``
    before) is used and left running. ``summary["time_to_solve_s"]`` counts from this call.
    """
    started_at = time.time()
    from apex_dqn.cli import train as cli
    from apex_dqn.cli.args import check_overrides, config_groups

    extra = _strings(overrides, "overrides")
    if not isinstance(config, Config):
        given = [*_strings(config or (), "config"), *extra]
        chosen = cli.compose_config(given)
    else:
        groups = config_groups(cli.CONF_DIR)
        check_overrides(extra, groups)
        named = [o for o in extra if o.lstrip("+~").split("=", 1)[0] in groups]
        if named:
            raise ConfigError(
                f"config groups ({', '.join(named)}) need a list of overrides, not a Config: "
                "apex_dqn.train([...]) composes them"
            )
        # Rebuilt: validation runs again, also on a Config whose fields were changed since.
        chosen = cli.merged_config(dataclasses.asdict(config), extra, "the given Config")
        given = _set_keys(chosen)

    def run_dir(settled: Config) -> Path:
        if settled.resume is not None:  # a resumed run goes on in its own directory
            assert settled.output_dir is not None  # load_resume sets it
            if output_dir is not None and Path(output_dir).resolve() != Path(settled.output_dir):
                raise ConfigError(
                    f"output_dir={str(output_dir)!r} with resume={settled.resume!r}: a resumed "
                    "run writes to the run directory it resumes"
                )
            return Path(settled.output_dir)
        if output_dir is not None:
            return Path(output_dir)
        return Path(settled.output_dir) if settled.output_dir else cli.default_run_dir(settled)

    trained = cli.train_config(chosen, given, run_dir, started_at=started_at)
    if trained.failure:
        raise TrainingFailed(
            f"the run {trained.failure} (outputs in {trained.run_dir})",
            trained.run_dir,
            trained.summary,
        )
    if trained.summary.get("interrupted_by") is not None:
        _reraise(int(trained.summary["interrupted_by"]))
    return TrainResult(
        run_dir=trained.run_dir,
        summary=trained.summary,
        config=trained.config,
        solved=bool(trained.summary["solved"]),
    )


def _reraise(signum: int) -> None:
    """After a run stopped by a signal has written its outputs: what the signal would have done
    to a script without apex-dqn (Ctrl-C raises KeyboardInterrupt, SIGTERM ends the process),
    so that a loop of ``train`` calls stops too."""
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise SystemExit(128 + signum)


def _strings(values: Any, name: str) -> list[str]:
    """``values`` as a list of override strings; TypeError for anything else."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise TypeError(f"{name} must be a Config or a list of override strings, got {values!r}")
    bad = [v for v in values if not isinstance(v, str)]
    if bad:
        raise TypeError(f"{name} must hold override strings such as 'seed=3', got {bad!r}")
    return list(values)


def _set_keys(config: Config) -> list[str]:
    """``key=value`` for every key whose value differs from ``Config()``'s (JSON values, which
    OmegaConf's dotlist reads as YAML)."""
    found: list[str] = []

    def walk(value: Any, default: Any, prefix: str) -> None:
        for f in dataclasses.fields(value):
            mine, theirs = getattr(value, f.name), getattr(default, f.name)
            if dataclasses.is_dataclass(mine) and dataclasses.is_dataclass(theirs):
                walk(mine, theirs, f"{prefix}{f.name}.")
            elif mine != theirs:
                dataclass_value = dataclasses.is_dataclass(mine) and not isinstance(mine, type)
                plain = dataclasses.asdict(mine) if dataclass_value else mine
                found.append(f"{prefix}{f.name}={json.dumps(plain)}")

    walk(config, Config(), "")
    return found


class Policy:
    """A trained Q-network that acts on observations (build it with ``load_policy``).

    Observations are batches shaped ``[B, *obs_shape]`` as the environment returns them (the
    run's preprocessing included: ``make_env`` builds that environment).

    Attributes:
        config: the run's config (its ``env`` section describes the environment).
        checkpoint: the checkpoint file the weights come from.
        obs_shape: the shape of one observation.
        num_actions: the number of discrete actions.
        learner_steps: the learner updates behind these weights.
        weights: the online network's weights, a numpy state dict.
    """

    def __init__(
        self,
        *,
        config: Config,
        weights: dict[str, np.ndarray],
        obs_shape: tuple[int, ...],
        obs_dtype: str,
        num_actions: int,
        checkpoint: Path,
        learner_steps: int = 0,
        seed: int = 0,
    ) -> None:
        from apex_dqn.algo.acting_q import build_acting_q

        self.config = config
        self.weights = weights
        self.obs_shape = tuple(obs_shape)
        self.obs_dtype = np.dtype(obs_dtype)
        self.num_actions = int(num_actions)
        self.checkpoint = checkpoint
        self.learner_steps = learner_steps
        self._q = build_acting_q(
            config.network, obs_shape=self.obs_shape, num_actions=self.num_actions, seed=0
        )
        self._q.set_weights(weights)
        self._rng = np.random.default_rng(seed)

    def q_values(self, obs_B: Any) -> np.ndarray:
        """Q-values, float32, shape [B, A], of a batch of observations [B, *obs_shape]."""
        batch = np.ascontiguousarray(obs_B, dtype=self.obs_dtype)
        if batch.shape[1:] != self.obs_shape:
            raise ValueError(
                f"observations must have shape [B, *{self.obs_shape}], got {batch.shape} "
                "(one observation: policy(obs) or obs[None])"
            )
        return np.asarray(self._q.q_values(batch), dtype=np.float32)

    def act(self, obs_B: Any, epsilon: float = 0.0) -> np.ndarray:
        """Actions, int64, shape [B]: greedy (argmax Q, first on ties), or with probability
        ``epsilon`` in [0, 1] a uniform random one (drawn from the policy's seeded RNG)."""
        from apex_dqn.algo.exploration import epsilon_greedy

        if not 0.0 <= epsilon <= 1.0:
            raise ValueError(f"epsilon must be in [0, 1], got {epsilon}")
        actions_B, _ = epsilon_greedy(self.q_values(obs_B), epsilon, self._rng)
        return actions_B

    def __call__(self, obs: Any, epsilon: float = 0.0) -> int:
        """The action for one observation (shape ``obs_shape``), for ``env.step(policy(obs))``."""
        return int(self.act(np.asarray(obs)[None], epsilon)[0])

    def make_env(self, render_mode: str | None = None) -> Any:
        """A gymnasium environment as the run trained on (its id, time limit, preprocessing);
        ``render_mode`` (e.g. "human", "rgb_array") goes to ``gymnasium.make``."""
        from apex_dqn.envs.factory import make_env

        return make_env(self.config.env, render_mode=render_mode)

    def __repr__(self) -> str:
        return (
            f"Policy({self.config.env.id}, {self.config.network.torso}, "
            f"{self.learner_steps:,} updates, {str(self.checkpoint)!r})"
        )


def load_policy(path: str | os.PathLike[str], *, seed: int = 0) -> Policy:
    """The policy of a checkpoint, like ``apex-dqn-eval checkpoint=<path>``.

    Args:
        path: a run directory (its latest checkpoint, checkpoint.pt) or a checkpoint file
            (checkpoint_best.pt, checkpoints/step-N.pt).
        seed: seed of the RNG behind ``act``'s random actions (epsilon > 0).

    Raises:
        FileNotFoundError: ``path`` does not exist, or a directory holds no checkpoint.pt.
        ConfigError: the file is not a readable apex-dqn checkpoint.
    """
    config, weights, state = _read_checkpoint(Path(path))
    return Policy(
        config=config,
        weights=weights,
        obs_shape=tuple(int(d) for d in state["env"]["obs_shape"]),
        obs_dtype=str(state["env"].get("obs_dtype", "float32")),
        num_actions=int(state["env"]["num_actions"]),
        checkpoint=_checkpoint_file(Path(path)),
        learner_steps=int(state.get("learner_steps", 0)),
        seed=seed,
    )


def _checkpoint_file(path: Path) -> Path:
    from apex_dqn.files.checkpoint import LATEST

    if not path.exists():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    file = path / LATEST if path.is_dir() else path
    if not file.is_file():
        raise FileNotFoundError(
            f"{str(path)!r} is not an apex-dqn run directory (it has no {LATEST})"
        )
    return file.resolve()


def _read_checkpoint(path: Path) -> tuple[Config, dict[str, np.ndarray], dict[str, Any]]:
    """Config, online weights and raw state of a checkpoint file or run directory."""
    from apex_dqn.cli.evaluate import read_checkpoint as read
    from apex_dqn.files.checkpoint import CheckpointError

    file = _checkpoint_file(path)
    try:
        return read(file)
    except CheckpointError as exc:
        raise ConfigError(str(exc)) from None

"""``apex-dqn-eval``: evaluate a checkpoint, optionally recording videos.

    apex-dqn-eval checkpoint=outputs/.../checkpoint_best.pt episodes=20 video=true

Arguments are ``key=value`` pairs validated against ``EvalRunConfig`` (no Hydra run
directory). The checkpoint carries its run's config (environment, network); the weights are the
learner's online network. Episodes run with the run's evaluation epsilon (``eval.epsilon``:
0.01 for Atari, so that the figure matches the run's learning curve) unless ``epsilon`` is
given, side by side in the vector env the run evaluated with (ale-py's for
``actors.vector_mode=ale``), or one after another in a single gymnasium env (the same
preprocessing) wrapped in ``RecordVideo`` when ``video`` is on. Mean, std, min and max
return are printed and written as JSON.
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, get_args, get_type_hints

import numpy as np

from apex_dqn.config import Config, ConfigError, check_float, check_int, from_dict


@dataclass
class EvalRunConfig:
    """What ``apex-dqn-eval`` does."""

    checkpoint: str = ""
    """A checkpoint file (checkpoint.pt, checkpoint_best.pt, checkpoints/step-N.pt) or a run
    directory (its checkpoint.pt)."""
    episodes: int = 10
    """Episodes to play, >= 1."""
    epsilon: float | None = None
    """Chance of a random action per step, in [0, 1] (None: the run's eval.epsilon)."""
    seed: int = 12345
    """Seed of the environments and of the epsilon draws, >= 0."""
    video: bool = False
    """Record every episode as MP4 with gymnasium's RecordVideo (needs apex-dqn[video])."""
    output: str | None = None
    """Where the JSON result goes (None: eval-<checkpoint name>.json beside the checkpoint);
    videos go to a folder of the same name without .json."""
    max_episode_steps: int | None = None
    """Cut episodes at this many steps (None: the run's setting)."""

    def __post_init__(self) -> None:
        if not self.checkpoint:
            raise ConfigError("checkpoint=<path> is required: a checkpoint file or run directory")
        check_int("episodes", self.episodes, lo=1, hi=100_000)
        if self.epsilon is not None:
            check_float("epsilon", self.epsilon, lo=0.0, hi=1.0)
        check_int("seed", self.seed, lo=0, hi=2**31 - 1)
        if self.max_episode_steps is not None:
            check_int("max_episode_steps", self.max_episode_steps, lo=1)


def parse_args(argv: list[str]) -> EvalRunConfig:
    """``key=value`` arguments as a validated ``EvalRunConfig`` (ConfigError when invalid)."""
    bad = [a for a in argv if "=" not in a]
    if bad:
        raise ConfigError(f"arguments are key=value pairs, got {bad}; keys: {_keys()}")
    hints = get_type_hints(EvalRunConfig)
    values: dict[str, Any] = {}
    for arg in argv:
        key, text = arg.split("=", 1)
        if key not in hints:
            raise ConfigError(f"unknown key {key!r}; keys: {_keys()}")
        values[key] = _parse_value(key, text, hints[key])
    return EvalRunConfig(**values)


def _parse_value(key: str, text: str, hint: Any) -> Any:
    """``text`` as the type ``hint`` of ``key`` (bool, int, float or str, maybe None)."""
    kinds = [t for t in get_args(hint) if t is not type(None)] or [hint]
    if type(None) in get_args(hint) and text.lower() in ("null", "none"):
        return None
    kind = kinds[0]
    if kind is bool:
        words = {"true": True, "yes": True, "on": True, "1": True}
        words |= {"false": False, "no": False, "off": False, "0": False}
        if text.lower() in words:
            return words[text.lower()]
        raise ConfigError(f"{key} must be true or false, got {text!r}")
    try:
        return kind(text)
    except ValueError:
        raise ConfigError(f"{key} must be {kind.__name__}, got {text!r}") from None


def _keys() -> str:
    return ", ".join(f.name for f in dataclasses.fields(EvalRunConfig))


def read_checkpoint(path: Path) -> tuple[Config, dict[str, np.ndarray], dict]:
    """The run config, online weights (numpy) and raw state of a checkpoint."""
    from apex_dqn.files import checkpoint as ckpt

    file = path / ckpt.LATEST if path.is_dir() else path
    if path.is_dir() and not file.is_file():
        raise ConfigError(
            f"checkpoint={str(path)!r} is a directory without {ckpt.LATEST}: give a checkpoint "
            "file or an apex-dqn run directory"
        )
    try:
        state = ckpt.state_from_bytes(file.read_bytes(), name=f"checkpoint={str(file)!r}")
    except OSError as exc:
        raise ConfigError(
            f"checkpoint={str(file)!r} cannot be read: {exc.strerror or exc}"
        ) from None
    except ckpt.CheckpointError as exc:
        raise ConfigError(str(exc)) from None
    learner = state.get("learner")
    online = learner.get("online") if isinstance(learner, dict) else None
    if (
        not isinstance(state.get("config"), dict)
        or not isinstance(online, dict)
        or "env" not in state
    ):
        raise ConfigError(f"checkpoint={str(file)!r} is not an apex-dqn checkpoint")
    config = from_dict(Config, {**state["config"], "resume": None})
    weights = {k: v.numpy() for k, v in state["learner"]["online"].items()}
    return config, weights, state


def play(
    cfg: EvalRunConfig,
    config: Config,
    weights: dict[str, np.ndarray],
    state: dict,
    video_dir: Path | None,
) -> list[float]:
    """Episode returns: side by side through the training-time ``Evaluator`` without video,
    one by one in a recorded env with it."""
    from apex_dqn.algo.acting_q import build_acting_q
    from apex_dqn.algo.evaluator import Evaluator
    from apex_dqn.algo.exploration import epsilon_greedy
    from apex_dqn.envs.factory import make_env

    env_cfg = config.env
    if cfg.max_episode_steps is not None:
        env_cfg = dataclasses.replace(env_cfg, max_episode_steps=cfg.max_episode_steps)
    epsilon = config.eval.epsilon if cfg.epsilon is None else cfg.epsilon
    obs_shape = tuple(state["env"]["obs_shape"])
    num_actions = int(state["env"]["num_actions"])
    if video_dir is None:
        evaluator = Evaluator(
            env=env_cfg,
            network=config.network,
            obs_shape=obs_shape,
            num_actions=num_actions,
            episodes=cfg.episodes,
            seed=cfg.seed,
            epsilon=epsilon,
            vector_mode=config.actors.vector_mode,
        )
        try:
            return evaluator.evaluate(weights, int(state.get("learner_steps", 0))).returns
        finally:
            evaluator.close()
    q = build_acting_q(config.network, obs_shape=obs_shape, num_actions=num_actions, seed=0)
    q.set_weights(weights)
    rng = np.random.default_rng(cfg.seed)
    env = _recording_env(make_env, env_cfg, video_dir)
    returns = []
    try:
        for episode in range(cfg.episodes):
            obs, _ = env.reset(seed=cfg.seed + episode)
            total, done = 0.0, False
            while not done:
                action_N, _ = epsilon_greedy(q.q_values(obs[None]), epsilon, rng)
                obs, reward, term, trunc, _ = env.step(int(action_N[0]))
                total += float(reward)
                done = term or trunc
            returns.append(total)
    finally:
        env.close()
    return returns


def _recording_env(make_env: Any, env_cfg: Any, video_dir: Path) -> Any:
    """One env rendering rgb_array frames, every episode recorded to ``video_dir``."""
    import gymnasium as gym
    from gymnasium.wrappers import RecordVideo

    try:
        env = make_env(env_cfg, render_mode="rgb_array")
        return RecordVideo(
            env, str(video_dir), episode_trigger=lambda _: True, name_prefix="eval", fps=30
        )
    except gym.error.DependencyNotInstalled as exc:
        raise ConfigError(
            f"video=true needs the video extra (moviepy; pygame to render classic-control "
            f"games): pip install 'apex-dqn[video]' ({str(exc).splitlines()[0]})"
        ) from None


def evaluate(cfg: EvalRunConfig) -> dict[str, Any]:
    """Run the evaluation ``cfg`` describes; write and return the JSON result."""
    path = Path(cfg.checkpoint)
    if not path.exists():
        raise ConfigError(f"checkpoint={cfg.checkpoint!r} does not exist")
    config, weights, state = read_checkpoint(path)
    file = path if path.is_file() else path / "checkpoint.pt"
    output = Path(cfg.output) if cfg.output else file.parent / f"eval-{file.stem}.json"
    video_dir = output.with_suffix("") if cfg.video else None
    try:  # before playing: a bad output path fails at once, not after the episodes
        output.parent.mkdir(parents=True, exist_ok=True)
        if video_dir is not None:
            video_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _unwritable(output, exc) from None
    returns = play(cfg, config, weights, state, video_dir)
    result = {
        "checkpoint": str(file.resolve()),
        "env_id": config.env.id,
        "learner_steps": int(state.get("learner_steps", 0)),
        "episodes": cfg.episodes,
        "epsilon": config.eval.epsilon if cfg.epsilon is None else cfg.epsilon,
        "seed": cfg.seed,
        "mean_return": float(np.mean(returns)),
        "std_return": float(np.std(returns)),
        "min_return": float(np.min(returns)),
        "max_return": float(np.max(returns)),
        "returns": returns,
        "videos": sorted(str(p) for p in video_dir.glob("*.mp4")) if video_dir else [],
    }
    from apex_dqn.files.atomic import write_json_atomic

    try:
        write_json_atomic(output, result)
    except OSError as exc:
        raise _unwritable(output, exc) from None
    result["output"] = str(output)
    return result


def _unwritable(output: Path, exc: OSError) -> ConfigError:
    return ConfigError(f"output={str(output)!r} cannot be written: {exc.strerror or exc}")


def _fail(message: str) -> NoReturn:
    print(f"apex-dqn-eval: error: {message}", file=sys.stderr, flush=True)
    sys.exit(2)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    try:
        cfg = parse_args(sys.argv[1:] if argv is None else argv)
        result = evaluate(cfg)
    except ConfigError as exc:
        _fail(str(exc))
    print(
        f"{result['env_id']}: {result['episodes']} episodes, return mean "
        f"{result['mean_return']:.2f} +- {result['std_return']:.2f}, min "
        f"{result['min_return']:.2f}, max {result['max_return']:.2f} "
        f"(learner step {result['learner_steps']:,}); written to {result['output']}",
        flush=True,
    )
    for video in result["videos"]:
        print(f"video: {video}")


if __name__ == "__main__":
    main()

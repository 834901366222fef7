"""Hydra entry point: ``apex-dqn`` / ``python -m apex_dqn`` with overrides.

The composed config is converted once with ``OmegaConf.to_object``, which runs every dataclass's
validation, and the environment is checked, all before Ray is imported or started: a bad override
fails in milliseconds with one line naming the key and the allowed values.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any, NoReturn

import hydra
from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from apex_dqn.config import Config, ConfigError

# An absolute path: with a relative config_path a console script finds no primary config. The
# repository's conf/ is used in a source checkout; an installed wheel ships it as apex_dqn/conf.
_PACKAGE = Path(__file__).resolve().parents[1]
_REPO_CONF = _PACKAGE.parent / "conf"
CONF_DIR = str(_REPO_CONF if _REPO_CONF.is_dir() else _PACKAGE / "conf")

ConfigStore.instance().store(name="apex_dqn_schema", node=Config)
# ${slug:${env.id}} in run directory names: ALE/Pong-v5 -> ALE-Pong-v5 (no nested folder).
if not OmegaConf.has_resolver("slug"):
    OmegaConf.register_new_resolver("slug", lambda text: str(text).replace("/", "-"))


def _fail(message: str, code: int = 2) -> NoReturn:
    print(f"apex-dqn: error: {message}", file=sys.stderr, flush=True)
    sys.exit(code)


def to_config(cfg: DictConfig) -> Config:
    """The validated dataclass config of a composed Hydra config (ConfigError when invalid)."""
    try:
        config = OmegaConf.to_object(cfg)
    except ConfigError:
        raise
    except Exception as exc:  # OmegaConf wraps errors raised in __post_init__
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, ConfigError):
            raise cause from None
        raise ConfigError(str(exc)) from None
    assert isinstance(config, Config)
    return config


def _task_overrides() -> list[str]:
    """The command line's overrides of config values (not Hydra's own)."""
    try:
        return list(HydraConfig.get().overrides.task)
    except ValueError:  # not under a Hydra app (tests composing configs directly)
        return []


def resumed_config(saved: dict, overrides: list[str]) -> Config:
    """The saved run's config with the command line's overrides on top, validated."""
    base = OmegaConf.merge(OmegaConf.structured(Config), saved)
    dotlist = [o.lstrip("+") for o in overrides if not o.startswith("~")]
    try:
        merged = OmegaConf.merge(base, OmegaConf.from_dotlist(dotlist))
    except Exception as exc:
        raise ConfigError(f"cannot apply {dotlist} to the resumed run's config: {exc}") from None
    return to_config(merged)  # type: ignore[arg-type]


def load_resume(config: Config, overrides: list[str]) -> tuple[Config, Any]:
    """Read the run to resume; return its config (with overrides) and what train() needs."""
    from apex_dqn.envs.factory import inspect_env
    from apex_dqn.files import checkpoint as ckpt
    from apex_dqn.run.outputs import Resume

    assert config.resume is not None
    run_dir = Path(config.resume).resolve()
    try:
        path = ckpt.run_checkpoint_path(run_dir)
        data = path.read_bytes()
        state = ckpt.state_from_bytes(data, name=f"checkpoint {str(path)!r}")
    except ckpt.CheckpointError as exc:
        raise ConfigError(str(exc)) from None
    saved = state.get("config")
    if not isinstance(saved, dict):
        raise ConfigError(f"checkpoint {str(path)!r} holds no run config; it cannot be resumed")
    saved = {**saved, "resume": str(run_dir), "output_dir": str(run_dir)}
    resumed = resumed_config(saved, overrides)
    info = inspect_env(resumed.env)
    try:
        ckpt.check_compatible(
            state,
            env_id=resumed.env.id,
            obs_shape=info.obs_shape,
            num_actions=info.num_actions,
            network=dataclasses.asdict(resumed.network),
        )
    except ckpt.CheckpointError as exc:
        raise ConfigError(f"resume={str(run_dir)!r}: {exc}") from None
    return resumed, Resume(run_dir=run_dir, data=data, state=state)


def _sized_to_machine(config: Config, overrides: list[str]) -> Config:
    """With a local Ray instance (no ``ray.address``), the CPU shares the command line does not
    set are sized to its CPUs (``apex_dqn.runtime.shares``); the run's first line says so."""
    import os

    if config.runtime != "ray" or config.ray.address or os.environ.get("RAY_ADDRESS"):
        return config
    from apex_dqn.runtime.shares import SHARE_KEYS, fit_cpu_shares

    explicit = {o.lstrip("+").split("=", 1)[0] for o in overrides} & set(SHARE_KEYS)
    cpus = config.ray.num_cpus or os.cpu_count() or 1
    config, note = fit_cpu_shares(config, cpus, explicit)
    if note:
        print(f"apex-dqn: {note}", flush=True)
    return config


def run(cfg: DictConfig) -> dict:
    """Validate ``cfg``, check the environment, train; return the run's summary."""
    from apex_dqn.envs.factory import inspect_env
    from apex_dqn.run.sinks import check_sinks

    resume = None
    try:
        config = to_config(cfg)
        if config.resume is not None:
            config, resume = load_resume(config, _task_overrides())
        info = inspect_env(config.env)
        check_sinks(config)
        config = _sized_to_machine(config, _task_overrides())
    except ConfigError as exc:
        _fail(str(exc))
    out_dir = Path(config.output_dir or HydraConfig.get().runtime.output_dir)
    if config.runtime == "local":
        from apex_dqn.runtime.local import train_local as train
    else:
        from apex_dqn.runtime.ray_runtime import train
    try:
        summary = train(config, info, out_dir, resume)
    except ConfigError as exc:
        _fail(str(exc))
    solved = "solved" if summary["solved"] else "not solved"
    print(
        f"apex-dqn: {solved}; best eval return {summary['best_eval_return']}, "
        f"{summary['env_steps']:,} env steps, {summary['learner_steps']:,} updates in "
        f"{summary['wall_s']:.1f}s; outputs in {out_dir.resolve()}",
        flush=True,
    )
    reason = summary.get("stop_reason") or ""
    if reason.startswith("failed"):
        _fail(f"the run {reason}", code=1)
    if summary.get("interrupted_by"):
        sys.exit(128 + int(summary["interrupted_by"]))
    return summary


class SweepSummaryCallback(Callback):
    """Hydra callback (conf/config.yaml): after a multirun, the sweep summary (``sweep.py``)."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from apex_dqn.cli.sweep import write_sweep_summary

        sweep_dir = Path(config.hydra.sweep.dir)
        try:
            paths = write_sweep_summary(sweep_dir, plot=bool(config.train.plot))
        except FileNotFoundError as exc:
            print(f"apex-dqn: no sweep summary: {exc}", flush=True)
            return
        print(f"apex-dqn: sweep summary: {', '.join(str(p) for p in paths)}", flush=True)


@hydra.main(config_path=CONF_DIR, config_name="config", version_base="1.3")
def _hydra_main(cfg: DictConfig) -> None:
    run(cfg)


def check_command_line(argv: list[str]) -> None:
    """Fail, in one line and with exit code 2, on an override that names no key or group, an
    unknown group option or a value of the wrong type (see ``apex_dqn.cli.args``)."""
    from apex_dqn.cli.args import check_overrides, config_groups

    overrides = [a for a in argv if "=" in a and not a.startswith("-")]
    try:
        check_overrides(overrides, config_groups(CONF_DIR))
    except ConfigError as exc:
        _fail(str(exc))


def main() -> None:
    """Console-script entry point."""
    check_command_line(sys.argv[1:])
    _hydra_main()

"""Hydra entry point: ``apex-dqn`` / ``python -m apex_dqn`` with overrides.

The composed config is converted once with ``OmegaConf.to_object``, which runs every dataclass's
validation, and the environment is checked, all before Ray is imported or started: a bad override
fails in milliseconds with one line naming the key and the allowed values.
"""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from apex_dqn.config import Config, ConfigError

# An absolute path: a relative config_path breaks console scripts (PITFALLS.md, Hydra 1). The
# repository's conf/ is used in a source checkout; an installed wheel ships it as apex_dqn/conf.
_REPO_CONF = Path(__file__).resolve().parent.parent / "conf"
CONF_DIR = str(_REPO_CONF if _REPO_CONF.is_dir() else Path(__file__).resolve().parent / "conf")

ConfigStore.instance().store(name="apex_dqn_schema", node=Config)


def _fail(message: str) -> None:
    print(f"apex-dqn: error: {message}", file=sys.stderr, flush=True)
    sys.exit(2)


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


def run(cfg: DictConfig) -> dict:
    """Validate ``cfg``, check the environment, train; return the run's summary."""
    from apex_dqn.envs import inspect_env

    try:
        config = to_config(cfg)
        info = inspect_env(config.env)
    except ConfigError as exc:
        _fail(str(exc))
    out_dir = Path(config.output_dir or HydraConfig.get().runtime.output_dir)
    if config.runtime == "local":
        from apex_dqn.runtime.local import train_local as train
    else:
        from apex_dqn.runtime.ray_runtime import train
    try:
        summary = train(config, info, out_dir)
    except ConfigError as exc:
        _fail(str(exc))
    solved = "solved" if summary["solved"] else "not solved"
    print(
        f"apex-dqn: {solved}; best eval return {summary['best_eval_return']}, "
        f"{summary['env_steps']:,} env steps, {summary['learner_steps']:,} updates in "
        f"{summary['wall_s']:.1f}s; outputs in {out_dir.resolve()}",
        flush=True,
    )
    return summary


@hydra.main(config_path=CONF_DIR, config_name="config", version_base="1.3")
def _hydra_main(cfg: DictConfig) -> None:
    run(cfg)


def main() -> None:
    """Console-script entry point."""
    _hydra_main()

"""Hydra entry point: ``apex-dqn`` / ``python -m apex_dqn`` with overrides.

The composed config is converted once with ``OmegaConf.to_object``, which runs every dataclass's
validation, and the environment is checked, all before Ray is imported or started: a bad override
fails in milliseconds with one line naming the key and the allowed values.

``train_config`` is that path from a validated config to a finished run, shared with the Python
API (``apex_dqn.api``): the CLI prints a ConfigError as one line and exits with code 2, the API
raises it. ``compose_config`` composes a list of overrides with the same ``conf/`` (Hydra's
compose API), and ``default_run_dir`` gives a run the directory the Hydra app would.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn

import hydra
from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from hydra.types import RunMode
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


def compose_config(overrides: Sequence[str] = ()) -> Config:
    """The validated config that ``apex-dqn <overrides>`` runs, composed from ``CONF_DIR``.

    Args:
        overrides: Hydra overrides as on the command line (``env=minatar``,
            ``actors.num_actors=2``); checked first as the command line is (``cli.args``).

    Raises:
        ConfigError: an unknown key or group option, a value of the wrong type or out of range,
            or an override Hydra cannot apply (a sweep, ``seed=0,1``, among them).
    """
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException

    from apex_dqn.cli.args import check_overrides, config_groups

    overrides = list(overrides)
    check_overrides(overrides, config_groups(CONF_DIR))
    try:
        # Hydra's global state is restored on exit: this works inside another Hydra app too.
        with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
            cfg = compose("config", overrides=overrides)
    except HydraException as exc:
        text = str(exc).strip()
        raise ConfigError(text.splitlines()[0] if text else type(exc).__name__) from None
    return to_config(cfg)


def merged_config(base: Mapping[str, Any], overrides: Sequence[str], what: str) -> Config:
    """``base`` (a config as a dict) with ``key=value`` overrides on top, validated.

    Args:
        base: a whole or partial config, as ``dataclasses.asdict`` or a checkpoint holds it.
        overrides: ``key=value`` strings; a leading ``+`` is dropped, ``~key`` ones skipped.
        what: what ``base`` is, for the message of a ConfigError.
    """
    merged_base = OmegaConf.merge(OmegaConf.structured(Config), dict(base))
    dotlist = [o.lstrip("+") for o in overrides if not o.startswith("~")]
    try:
        merged = OmegaConf.merge(merged_base, OmegaConf.from_dotlist(dotlist))
    except Exception as exc:
        raise ConfigError(f"cannot apply {dotlist} to {what}: {exc}") from None
    return to_config(merged)  # type: ignore[arg-type]


def resumed_config(saved: dict, overrides: Sequence[str]) -> Config:
    """The saved run's config with the command line's overrides on top, validated."""
    return merged_config(saved, overrides, "the resumed run's config")


def default_run_dir(config: Config) -> Path:
    """The run directory the Hydra app would give ``config``, for runs started from Python.

    ``hydra.run.dir`` of ``conf/config.yaml`` (``outputs/<date>/<time>-<env>-seed<N>``, relative
    to the working directory), with ``-2``, ``-3``, ... appended while the name is taken (two
    runs started in the same second).
    """
    from hydra.core.utils import setup_globals

    setup_globals()  # Hydra's ${now:...} resolver
    conf = OmegaConf.load(Path(CONF_DIR) / "config.yaml")
    hydra_run = OmegaConf.to_container(conf.hydra.run, resolve=False)  # the pattern, unresolved
    assert isinstance(hydra_run, dict)
    node = OmegaConf.create(
        {"env": {"id": config.env.id}, "seed": config.seed, "dir": hydra_run["dir"]}
    )
    path = Path(str(node.dir))
    candidate, n = path, 2
    while candidate.exists():
        candidate, n = path.with_name(f"{path.name}-{n}"), n + 1
    return candidate


def load_resume(config: Config, overrides: Sequence[str]) -> tuple[Config, Any]:
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


def _sized_to_machine(config: Config, overrides: Sequence[str]) -> Config:
    """With a local Ray instance (no ``ray.address``), the CPU shares the command line does not
    set are sized to its CPUs (``apex_dqn.runtime.shares``); the run's first line says so."""
    from apex_dqn.runtime.ray_cluster import local_instance

    if config.runtime != "ray" or not local_instance(config.ray):  # a cluster: not ours to size
        return config
    from apex_dqn.runtime.shares import SHARE_KEYS, fit_cpu_shares, usable_cpus

    explicit = {o.lstrip("+").split("=", 1)[0] for o in overrides} & set(SHARE_KEYS)
    cpus = config.ray.num_cpus or usable_cpus()
    config, note = fit_cpu_shares(config, cpus, explicit)
    if note:
        print(f"apex-dqn: {note}", flush=True)
    return config


@dataclasses.dataclass(frozen=True)
class Trained:
    """A finished run of ``train_config``.

    Attributes:
        config: the config it ran with (resumed and sized to the machine).
        run_dir: its directory.
        summary: the content of its summary.json.
    """

    config: Config
    run_dir: Path
    summary: dict[str, Any]

    @property
    def failure(self) -> str | None:
        """Why the run failed for good (a component that kept failing), None if it did not."""
        reason = str(self.summary.get("stop_reason") or "")
        return reason if reason.startswith("failed") else None


def train_config(
    config: Config,
    overrides: Sequence[str],
    run_dir: Callable[[Config], Path],
    started_at: float | None = None,
) -> Trained:
    """Check and train ``config``: the one path of the CLI and the Python API.

    A run to resume is read (its config with ``overrides`` on top), the environment and the
    metric sinks are checked, the CPU shares ``overrides`` do not set are sized to a local Ray
    instance, and the run trains on ``config.runtime``; the last line says how it went.

    Args:
        config: the validated config.
        overrides: the keys given explicitly (``key=value``, as on the command line): applied on
            top of a resumed run's config, and kept when CPU shares are sized.
        run_dir: the run directory of the final config (called once the config is settled).
        started_at: the origin of ``time_to_solve_s`` (None: when this process started running
            apex-dqn, right for the command line).

    Raises:
        ConfigError: the config, the environment or the Ray cluster cannot host the run (or
            its head does not answer); raised before anything is written.
    """
    from apex_dqn.envs.factory import inspect_env
    from apex_dqn.run.sinks import check_sinks

    resume = None
    if config.resume is not None:
        config, resume = load_resume(config, overrides)
    info = inspect_env(config.env)
    check_sinks(config)
    if config.runtime == "ray":
        from apex_dqn.runtime.ray_cluster import check_reachable

        check_reachable(config.ray)
    config = _sized_to_machine(config, overrides)
    out_dir = run_dir(config)
    if config.runtime == "local":
        from apex_dqn.runtime.local import train_local as train
    else:
        from apex_dqn.runtime.ray_runtime import train
    summary = train(config, info, out_dir, resume, started_at=started_at)
    solved = "solved" if summary["solved"] else "not solved"
    print(
        f"apex-dqn: {solved}; best eval return {summary['best_eval_return']}, "
        f"{summary['env_steps']:,} env steps, {summary['learner_steps']:,} updates in "
        f"{summary['wall_s']:.1f}s; outputs in {out_dir.resolve()}",
        flush=True,
    )
    return Trained(config=config, run_dir=out_dir.resolve(), summary=summary)


def _hydra_run_dir(config: Config) -> Path:
    return Path(config.output_dir or HydraConfig.get().runtime.output_dir)


_JOBS_RUN = 0  # Hydra jobs this process has started


def _job_started_at() -> float | None:
    """The origin of ``time_to_solve_s`` for this Hydra job: process start (None) for the
    process's first job, as for a single run; this job's start for the later jobs of a multirun
    that share the process (else each would count the jobs before it)."""
    global _JOBS_RUN
    _JOBS_RUN += 1
    if _JOBS_RUN > 1 and HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
        return time.time()
    return None


def run(cfg: DictConfig) -> dict:
    """Validate ``cfg``, check the environment, train; return the run's summary."""
    started_at = _job_started_at()
    try:
        trained = train_config(to_config(cfg), _task_overrides(), _hydra_run_dir, started_at)
    except ConfigError as exc:
        _fail(str(exc))
    if trained.failure:
        _fail(f"the run {trained.failure}", code=1)
    summary = trained.summary
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

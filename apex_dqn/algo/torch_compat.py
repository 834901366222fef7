"""The torch plumbing under the learner, kept apart so that ``learner.py`` reads as the algorithm.

Here: which device and precision a learner runs at (``resolve_device``, ``resolve_amp``,
``allow_tf32``), whether its networks are compiled (``maybe_compile``), its Adam without
TorchDynamo's start-up cost (``fused_adam``, ``dynamo_free_adam``), and host-to-device copies
through pinned memory on a side stream (``HostToDevice``). None of it changes what an update
computes.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import torch

from apex_dqn.algo.networks import cpu_has_native_bf16

TORCH_DTYPES: dict[np.dtype, torch.dtype] = {
    np.dtype(np.uint8): torch.uint8,
    np.dtype(np.float32): torch.float32,
    np.dtype(np.int64): torch.int64,
    np.dtype(np.bool_): torch.bool,
}


def resolve_device(name: str) -> torch.device:
    """``auto`` is CUDA when torch sees a GPU (not merely CUDA_VISIBLE_DEVICES), else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"learner.device={name!r} but torch sees no CUDA device here")
    return torch.device(name)


def resolve_amp(amp: bool | str, device: torch.device) -> bool:
    """Whether to autocast to bf16: ``auto`` is on for a CPU with native bf16 instructions
    (AVX512-BF16, AMX), where this project's networks ran their updates 1.8x faster, and off
    elsewhere (emulated bf16 is slower than float32; on CUDA these networks gain nothing)."""
    if amp != "auto":
        return bool(amp)
    return device.type == "cpu" and cpu_has_native_bf16()


def resolve_channels_last(channels_last: bool | str, device: torch.device, torso: str) -> bool:
    """Whether the learner keeps its networks channels-last: ``auto`` is on for a CPU learner
    with the nature torso, where oneDNN's NHWC convolutions made its update 1.3-1.4x faster
    (float32, docs/atari.md), and off elsewhere; never for the MLP torso (no convolutions)."""
    if torso == "mlp":
        return False
    if channels_last != "auto":
        return bool(channels_last)
    return device.type == "cpu" and torso == "nature"


def resolve_num_threads(
    num_threads: int | str, num_cpus: float, device: torch.device, torso: str, node_cpus: int
) -> int:
    """The learner's torch threads: ``auto`` is max(1, int(num_cpus)), raised to 2 for a CPU
    learner with the nature torso on a node of 2 or more CPUs, where a whole Pong run made 1.2x
    the updates/s with 2 threads on 2 cores and the MinAtar learner made fewer (docs/atari.md)."""
    if num_threads != "auto":
        return int(num_threads)
    threads = max(1, int(num_cpus))
    if device.type == "cpu" and torso == "nature":
        threads = max(threads, min(2, node_cpus))
    return threads


def allow_tf32(device: torch.device) -> None:
    """On CUDA, TF32 tensor cores for float32 matmuls (convolutions already use them by
    default). A process-wide torch setting; nothing on CPU."""
    if device.type == "cuda":
        torch.set_float32_matmul_precision("high")


def maybe_compile(module: torch.nn.Module, enabled: bool) -> Callable[..., torch.Tensor]:
    """``torch.compile(module)`` when ``enabled``, else ``module`` itself.

    The compiled callable shares its parameters with ``module``, so loading a state dict into
    ``module`` updates what the compiled code runs.
    """
    return torch.compile(module) if enabled else module  # type: ignore[return-value]


def fused_adam(
    params: Any, *, lr: float, eps: float, compiled: bool
) -> tuple[torch.optim.Adam, Callable[[], Any]]:
    """torch's fused Adam over ``params`` and its step: one kernel over all parameters (on
    this CPU a third of the for-loop Adam's time, which for MinAtar's small network was 7% of
    an update). With ``compiled`` networks TorchDynamo is loaded anyway and the step is
    ``optimizer.step``; otherwise it is ``dynamo_free_adam``'s."""
    if compiled:
        optimizer = torch.optim.Adam(params, lr=lr, eps=eps, fused=True)
        return optimizer, optimizer.step
    return dynamo_free_adam(params, lr=lr, eps=eps)


def dynamo_free_adam(
    params: Any, *, lr: float, eps: float
) -> tuple[torch.optim.Adam, Callable[[], None]]:
    """torch's fused Adam over ``params``, and its step, without importing TorchDynamo.

    torch.optim wraps ``step``, ``add_param_group``, ``zero_grad``, ``state_dict``, the
    functional Adam and more in code whose first call imports ``torch._dynamo``: 1.5 to 2 s of
    CPU, the largest part of a learner's start-up on two cores (``benchmarks/startup.py``).
    Outside of ``torch.compile`` those wrappers only switch gradients off and run the function
    they wrap, so the other wrappers are given the plain function as the disabled one they
    cache on first use, and the step returned runs the unwrapped ``step`` under ``no_grad``.
    Tests check that its steps are bit for bit those of ``optimizer.step``. Once
    ``torch._dynamo`` is loaded anyway (``learner.compile``), nothing is changed and the step
    is ``optimizer.step``.
    """
    if "torch._dynamo" in sys.modules:
        optimizer = torch.optim.Adam(params, lr=lr, eps=eps, fused=True)
        return optimizer, optimizer.step  # type: ignore[return-value]
    functional_adam = importlib.import_module("torch.optim.adam").adam
    wrappers: list[Any] = [
        getattr(torch.optim.Optimizer, name)
        for name in ("add_param_group", "zero_grad", "state_dict", "load_state_dict")
    ]
    wrappers += [cell.cell_contents for cell in functional_adam.__closure__ or ()]
    for wrapper in wrappers:
        fn = getattr(wrapper, "__wrapped__", None)
        if callable(wrapper) and fn is not None and not hasattr(fn, "__dynamo_disable"):
            fn.__dynamo_disable = fn  # what torch._disable_dynamo caches on its first call
    optimizer = torch.optim.Adam(params, lr=lr, eps=eps, fused=True)
    step: Any = type(optimizer).step
    while hasattr(step, "__wrapped__"):  # the profiler hook, then the no-grad switch
        step = step.__wrapped__

    def plain_step() -> None:
        with torch.no_grad():
            step(optimizer)

    return optimizer, plain_step


class HostToDevice:
    """Copies numpy arrays to a device, asynchronously where that pays.

    Without pinning (CPU, or ``learner.pin_memory`` off) the arrays are only wrapped, or moved
    synchronously. With it (CUDA), each array is written into a pinned host block from torch's
    caching host allocator (no cudaHostAlloc per batch once warm) and copied to the GPU on a
    side stream, so that a host thread can copy the next batches while the current one is
    computed on; ``wait`` makes the computing stream wait for those copies.

    Args:
        device: where the tensors go.
        pinned: copy through pinned memory on a side stream (CUDA only).
    """

    def __init__(self, device: torch.device, pinned: bool) -> None:
        self.device = device
        self._stream = torch.cuda.Stream(device) if pinned else None

    @property
    def asynchronous(self) -> bool:
        """Whether ``copy`` runs on a side stream (worth calling from a helper thread)."""
        return self._stream is not None

    def copy(
        self, arrays: dict[str, Sequence[np.ndarray]]
    ) -> tuple[dict[str, torch.Tensor], torch.cuda.Event | None]:
        """Each entry's parts, concatenated along the first axis, as one tensor on the device.

        Returns the tensors by name and, when asynchronous, the event recorded after the last
        copy (``wait`` on it before using them); else None.
        """
        if self._stream is None:
            return {
                name: torch.as_tensor(
                    parts[0] if len(parts) == 1 else np.concatenate(parts), device=self.device
                )
                for name, parts in arrays.items()
            }, None
        # The parts go straight into their places in one pinned block: each byte is copied
        # once on the host, which is what bounds this path (measured on an H100: batch 512 of
        # Atari stacks is 29 MB).
        tensors = {}
        with torch.cuda.stream(self._stream):
            for name, parts in arrays.items():
                rows = sum(len(part) for part in parts)
                pinned = torch.empty(
                    (rows, *parts[0].shape[1:]), dtype=TORCH_DTYPES[parts[0].dtype], pin_memory=True
                )
                block = pinned.numpy()
                offset = 0
                for part in parts:
                    block[offset : offset + len(part)] = part
                    offset += len(part)
                tensors[name] = pinned.to(self.device, non_blocking=True)
            ready = torch.cuda.Event()
            ready.record(self._stream)
        return tensors, ready

    def wait(self, ready: torch.cuda.Event | None, tensors: Iterable[torch.Tensor]) -> None:
        """Make the current stream wait for ``copy``'s event ``ready`` (None: nothing to wait
        for), and tell the allocator that ``tensors``, made on the side stream, are used on it."""
        if ready is None:
            return
        stream = torch.cuda.current_stream(self.device)
        stream.wait_event(ready)
        for tensor in tensors:
            tensor.record_stream(stream)

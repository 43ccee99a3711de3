"""Resolution of the ``device``, ``dtype`` and ``n_jobs`` parameters.

This is the only module that asks torch which accelerators exist.
"""

from __future__ import annotations

import contextlib
import os
import warnings

import numpy as np
import torch

__all__ = [
    "DEVICE_TYPES",
    "DTYPE_TYPES",
    "available_bytes",
    "available_devices",
    "numpy_dtype",
    "resolve_device",
    "resolve_dtype",
    "serving_device",
    "to_numpy",
    "to_tensor",
    "torch_dtype",
    "torch_threads",
]

#: Types accepted by the ``device`` and ``dtype`` parameters (their constraints).
DEVICE_TYPES = [str, torch.device]
DTYPE_TYPES = [str, type, np.dtype, torch.dtype]

#: The floating dtypes of the computation, by name.
_DTYPES = {
    "float32": torch.float32,
    "float64": torch.float64,
}


def torch_dtype(np_dtype) -> torch.dtype:
    """The torch floating dtype of a NumPy one (float64 -> float64, else float32)."""
    return torch.float64 if np.dtype(np_dtype) == np.float64 else torch.float32


def numpy_dtype(dtype: torch.dtype) -> np.dtype:
    """The NumPy dtype of a torch floating dtype."""
    return np.dtype(np.float64 if dtype == torch.float64 else np.float32)


def to_tensor(array, device, dtype: torch.dtype | None = None) -> torch.Tensor:
    """``array`` as a tensor on ``device`` (read-only arrays are copied first)."""
    array = np.asarray(array)
    if not array.flags.writeable:
        array = array.copy()
    return torch.as_tensor(array, dtype=dtype, device=device)


def to_numpy(tensor: torch.Tensor, dtype=None) -> np.ndarray:
    """A NumPy copy of ``tensor`` on the CPU (in ``dtype`` if given).

    The conversion happens on the CPU: MPS has no float64.
    """
    out = tensor.detach().to("cpu").numpy()
    return out.astype(out.dtype if dtype is None else dtype, copy=True)


def available_devices() -> list[str]:
    """Names of the devices torch can use on this machine."""
    names = ["cpu"]
    if torch.cuda.is_available():
        names += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        names.append("mps")
    return names


def available_bytes(device=None) -> int | None:
    """Memory free for new allocations on ``device`` (the CPU by default).

    None when it cannot be known (then callers do not check).
    """
    device = torch.device("cpu") if device is None else torch.device(device)
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    if device.type != "cpu":
        return None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def resolve_device(device) -> torch.device:
    """Turn the ``device`` parameter into a usable :class:`torch.device`.

    Raises
    ------
    ValueError
        If the device name is malformed or the device is not available here.
    """
    if isinstance(device, str) and device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = device if isinstance(device, torch.device) else torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(
            f"The 'device' parameter of MFRegressor must be 'cpu', 'cuda', "
            f"'cuda:N', 'mps', 'auto' or a torch.device. Got {device!r} instead."
        ) from None
    if dev.type == "cpu":
        return dev
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            built = torch.version.cuda or "no CUDA support"
            raise ValueError(
                f"device={device!r} was requested but CUDA is not available on this "
                f"machine (torch {torch.__version__}, built with {built}). "
                f"Available devices: {', '.join(available_devices())}. Use "
                "device='cpu', or device='auto' to take a GPU only when there is one."
            )
        index = 0 if dev.index is None else dev.index
        if index >= torch.cuda.device_count():
            raise ValueError(
                f"device={device!r} was requested but this machine has "
                f"{torch.cuda.device_count()} CUDA device(s). Available devices: "
                f"{', '.join(available_devices())}."
            )
        return torch.device("cuda", index)
    if dev.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ValueError(
                f"device={device!r} was requested but MPS (Apple GPU) is not "
                f"available on this machine. Available devices: "
                f"{', '.join(available_devices())}."
            )
        return dev
    raise ValueError(
        f"device={device!r} is not supported: use 'cpu', 'cuda', 'cuda:N', 'mps' or "
        f"'auto'. Available devices: {', '.join(available_devices())}."
    )


def serving_device(device) -> torch.device:
    """The device to serve a fitted model on: ``device``, else the CPU.

    A model fitted on a GPU and loaded on a machine without one still serves:
    when ``device`` names an accelerator that is not available here, this
    warns once per call and returns the CPU. A malformed name still raises.
    """
    try:
        return resolve_device(device)
    except ValueError as exc:
        if "not available" not in str(exc) and "CUDA device(s)" not in str(exc):
            raise
        warnings.warn(
            f"This model's device={device!r} is not available on this machine; "
            "serving on the CPU instead. Call set_params(device='cpu') (or "
            "device='auto') to choose the device and silence this warning.",
            UserWarning,
            stacklevel=3,
        )
        return torch.device("cpu")


def resolve_dtype(dtype, device: torch.device) -> torch.dtype:
    """Turn the ``dtype`` parameter into a torch floating dtype."""
    if isinstance(dtype, torch.dtype):
        name = str(dtype).removeprefix("torch.")
    else:
        try:
            name = np.dtype(dtype).name
        except TypeError:
            name = str(dtype)
    if name not in _DTYPES:
        raise ValueError(
            f"The 'dtype' parameter of MFRegressor must be 'float32' or 'float64'. "
            f"Got {dtype!r} instead."
        )
    if name == "float64" and device.type == "mps":
        raise ValueError(
            "dtype='float64' is not supported on MPS devices; use dtype='float32'."
        )
    return _DTYPES[name]


def _others_running() -> int | None:
    """Runnable threads of other processes right now (Linux), None if unknown.

    ``procs_running`` of /proc/stat counts every runnable thread of the
    machine; this process's own runnable threads (the caller, and torch
    workers still spinning after their last parallel region) are taken off.
    """
    try:
        with open("/proc/stat", "rb") as f:
            for line in f:
                if line.startswith(b"procs_running"):
                    running = int(line.split()[1])
                    break
            else:
                return None
        own = 0
        for task in os.scandir("/proc/self/task"):
            with open(os.path.join(task.path, "stat"), "rb") as f:
                state = f.read().rsplit(b")", 1)[1].split()[0]
            own += state == b"R"
    except (OSError, ValueError, IndexError):
        return None
    return max(running - max(own, 1), 0)


def idle_threads(limit: int) -> int:
    """How many of ``limit`` threads can run without waiting for a core.

    The cores available to this process minus the threads other processes
    keep runnable, at least 1. torch's threads meet at a barrier after every
    parallel operation: when another process holds one of their cores, each
    barrier waits for a time slice, and a fit of many small operations slows
    tenfold, far beyond its share of the machine. With as many threads as
    idle cores it slows only by that share. Unknown load (not Linux, or
    counters that are not this machine's): ``limit``.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    others = _others_running()
    if others is None or others > 4 * (os.cpu_count() or 1):
        return limit
    return int(min(limit, max(1, cores - others)))


@contextlib.contextmanager
def torch_threads(n_jobs, *, adapt: bool = True):
    """Run a block with ``n_jobs`` intra-op torch threads.

    None: torch's setting, lowered to the cores other processes leave idle
    (see :func:`idle_threads`) when ``adapt``; short calls whose operations
    are not split across threads (predict) pass ``adapt=False`` and skip the
    probe of the load (about 80 us). A number follows joblib's rules (-1: all
    cores, -2: all but one...).
    """
    if n_jobs == 0:
        raise ValueError(
            "The 'n_jobs' parameter must be a positive number of threads, -1 "
            "(all cores), -2 (all but one)...; got 0. Use n_jobs=None to keep "
            "torch's setting."
        )
    previous = torch.get_num_threads()
    if n_jobs is None:
        n_jobs = idle_threads(previous) if adapt else previous
    elif n_jobs < 0:  # joblib's convention: -1 is every core, -2 all but one
        n_jobs = max(1, (os.cpu_count() or 1) + 1 + n_jobs)
    if n_jobs == previous:
        yield
        return
    torch.set_num_threads(n_jobs)
    try:
        yield
    finally:
        torch.set_num_threads(previous)

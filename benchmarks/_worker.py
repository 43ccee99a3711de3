"""Fit and predict one system on one split, in a fresh process.

Usage: ``python benchmarks/_worker.py SPEC.json RESULT.json`` (run by
``run.py``, not by hand). The spec names the system, its parameters, the
device and the folder of the split's ``.npy`` arrays.
"""

from __future__ import annotations

import gc
import json
import sys
import time
import traceback
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import PeakMemory, Split  # noqa: E402
from _systems import ADAPTERS  # noqa: E402


def _cuda_sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def run(spec: dict) -> dict:
    split = Split.load(Path(spec["split_dir"]))
    device = spec.get("device", "cpu")
    adapter = ADAPTERS[spec["system"]](spec.get("params"), device=device)
    adapter.prepare()
    startup_s = adapter.setup()
    gpu = device.startswith("cuda")
    if gpu:
        import torch

        torch.cuda.reset_peak_memory_stats()
    gc.collect()
    with PeakMemory(children=adapter.child_memory) as mem:
        start = time.perf_counter()
        adapter.fit(split.train_u, split.train_i, split.train_r)
        _cuda_sync(device)
        fit_s = time.perf_counter() - start
    start = time.perf_counter()
    pred = np.asarray(adapter.predict(split.test_u, split.test_i), dtype=np.float64)
    predict_s = time.perf_counter() - start
    if pred.shape != split.test_r.shape:
        raise RuntimeError(
            f"predict returned shape {pred.shape}, want {split.test_r.shape}"
        )
    n_nan = int(np.isnan(pred).sum())
    rmse = float(np.sqrt(np.nanmean((pred - split.test_r) ** 2)))
    result = {
        "status": "ok",
        "system": spec["system"],
        "label": spec["label"],
        "settings": adapter.settings(),
        "rmse": rmse,
        "fit_s": fit_s,
        "predict_s": predict_s,
        "startup_s": startup_s,
        "peak_mib": mem.peak_increase_mib,
        "peak_method": mem.method,
        # Not ru_maxrss: Linux carries the parent's high-water mark across
        # exec, so a worker would report the benchmark driver's peak.
        "peak_rss_mib": mem.peak_rss_mib,
        "n_train": int(len(split.train_r)),
        "n_test": int(len(split.test_r)),
        "notes": list(adapter.notes),
        **adapter.info,
    }
    if mem.children_peak_mib is not None:
        result["child_processes_peak_mib"] = mem.children_peak_mib
    if n_nan:
        result["notes"].append(f"{n_nan} NaN predictions left out of the RMSE")
    if gpu:
        import torch

        result["gpu_peak_mib"] = torch.cuda.max_memory_allocated() / 2**20
    adapter.close()
    result["live_children_cpu_s"] = _live_children_cpu()
    return result


def _live_children_cpu() -> float:
    """CPU seconds of child processes still running (e.g. Spark's JVM)."""
    try:
        import psutil
    except ImportError:
        return 0.0
    total = 0.0
    for child in psutil.Process().children(recursive=True):
        try:
            t = child.cpu_times()
            total += t.user + t.system
        except Exception:  # noqa: BLE001 - child may be gone
            pass
    return total


def main() -> None:
    spec_path, out_path = sys.argv[1], sys.argv[2]
    spec = json.loads(Path(spec_path).read_text())
    try:
        result = run(spec)
    except Exception as exc:  # noqa: BLE001 - report any failure as a row
        traceback.print_exc()
        result = {
            "status": "failed",
            "system": spec.get("system"),
            "label": spec.get("label"),
            "error": f"{type(exc).__name__}: {exc}",
        }
    Path(out_path).write_text(json.dumps(result))


if __name__ == "__main__":
    main()

"""Shared helpers of the benchmark scripts: data, machine info, memory, tables.

Nothing here is part of the ``skmf`` package; timings live only in the
benchmark scripts.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import platform
import resource
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent

#: MovieLens shapes (users, items, ratings) used for synthetic data.
ML_SHAPES = {
    "ml-1m": (6_040, 3_706, 1_000_209),
    "ml-10m": (69_878, 10_677, 10_000_054),
    "ml-25m": (162_541, 59_047, 25_000_095),
}
SYNTHETIC = {
    "synthetic-1m": ML_SHAPES["ml-1m"],
    "synthetic-10m": ML_SHAPES["ml-10m"],
    "synthetic-25m": ML_SHAPES["ml-25m"],
}
DATASETS = ("ml-100k", "ml-1m", *SYNTHETIC)


# ---------------------------------------------------------------------- data
def default_data_dir() -> Path:
    """The data home of ``skmf.datasets``: ``$SKMF_DATA``, else ``~/skmf_data``."""
    from skmf.datasets import get_data_home

    return Path(get_data_home())


@dataclass
class Split:
    """One train/test split; ids are int64 (or codes of the original ids)."""

    name: str
    train_u: np.ndarray
    train_i: np.ndarray
    train_r: np.ndarray
    test_u: np.ndarray
    test_i: np.ndarray
    test_r: np.ndarray

    def save(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        for key in ("train_u", "train_i", "train_r", "test_u", "test_i", "test_r"):
            np.save(folder / f"{key}.npy", getattr(self, key))
        return folder

    @classmethod
    def load(cls, folder: Path, name: str = "") -> Split:
        arrays = {
            key: np.load(Path(folder) / f"{key}.npy")
            for key in ("train_u", "train_i", "train_r", "test_u", "test_i", "test_r")
        }
        return cls(name=name, **arrays)

    def describe(self) -> dict:
        tu, ti = np.unique(self.train_u), np.unique(self.train_i)
        return {
            "split": self.name,
            "n_train": int(len(self.train_r)),
            "n_test": int(len(self.test_r)),
            "n_users_train": int(len(tu)),
            "n_items_train": int(len(ti)),
            "test_unknown_users": int((~np.isin(self.test_u, tu)).sum()),
            "test_unknown_items": int((~np.isin(self.test_i, ti)).sum()),
        }


def random_split(name, users, items, ratings, train_fraction=0.9, seed=0) -> Split:
    """First ``train_fraction`` of ``RandomState(seed).permutation`` trains."""
    n = len(ratings)
    perm = np.random.RandomState(seed).permutation(n)
    n_train = int(train_fraction * n)
    tr, te = perm[:n_train], perm[n_train:]
    return Split(
        name,
        users[tr],
        items[tr],
        ratings[tr],
        users[te],
        items[te],
        ratings[te],
    )


def _as_int_ids(users, items):
    """int64 ids as they are if integral, else codes of the sorted ids."""
    out = []
    for ids in (users, items):
        ids = np.asarray(ids)
        if np.issubdtype(ids.dtype, np.integer):
            out.append(ids.astype(np.int64))
        else:
            codes, _ = pd.factorize(ids, sort=True)
            out.append(codes.astype(np.int64))
    return out


def _columns(frame: pd.DataFrame):
    return (
        frame["user"].to_numpy(np.int64),
        frame["item"].to_numpy(np.int64),
        frame["rating"].to_numpy(np.float64),
    )


def load_ml100k_fold(data_dir: Path, fold: int) -> Split:
    """Official split ``u{fold}`` of MovieLens 100K (``skmf.datasets``)."""
    from skmf.datasets import load_movielens_split

    train, test = load_movielens_split(f"u{fold}", data_home=data_dir)
    return Split(f"ml-100k u{fold}", *_columns(train), *_columns(test))


def load_ml1m(data_dir: Path):
    """All 1,000,209 MovieLens 1M ratings as (users, items, ratings)."""
    from skmf.datasets import load_movielens

    return _columns(load_movielens("1m", data_home=data_dir))


def make_synthetic(n_users, n_items, n_ratings, seed=0):
    """``skmf.datasets.make_ratings`` (rank 10, noise 0.5, ratings in [1, 5])."""
    from skmf.datasets import make_ratings

    data = make_ratings(
        n_users=n_users, n_items=n_items, n_ratings=n_ratings, random_state=seed
    )
    users = np.ascontiguousarray(data.X[:, 0], dtype=np.int64)
    items = np.ascontiguousarray(data.X[:, 1], dtype=np.int64)
    ratings = np.asarray(data.y, dtype=np.float64)
    return users, items, ratings


def read_ratings_file(path: Path):
    """A csv/tsv/``::``/whitespace file: user, item, rating by position."""
    path = Path(path)
    opener = __import__("gzip").open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="latin-1") as fh:
        first = fh.readline()
    if "::" in first:
        kw = {"sep": "::", "engine": "python"}
    elif "\t" in first:
        kw = {"sep": "\t"}
    elif "," in first:
        kw = {"sep": ","}
    elif ";" in first:
        kw = {"sep": ";"}
    else:
        kw = {"sep": r"\s+"}
    fields = first.replace("::", ",").replace("\t", ",").replace(";", ",").split(",")
    try:
        float(fields[2].strip())
        header = None
    except (IndexError, ValueError):
        header = 0
    df = pd.read_csv(path, header=header, usecols=[0, 1, 2], **kw)
    users, items = _as_int_ids(df.iloc[:, 0].to_numpy(), df.iloc[:, 1].to_numpy())
    return users, items, df.iloc[:, 2].to_numpy(np.float64)


def load_splits(dataset: str, data_dir: Path, folds: int = 5, seed: int = 0):
    """Yield the split(s) of ``dataset`` (a name in DATASETS or a file path)."""
    if dataset == "ml-100k":
        for k in range(1, folds + 1):
            yield load_ml100k_fold(data_dir, k)
    elif dataset == "ml-1m":
        yield random_split("ml-1m 90/10", *load_ml1m(data_dir), seed=seed)
    elif dataset in SYNTHETIC:
        yield random_split(
            f"{dataset} 90/10",
            *make_synthetic(*SYNTHETIC[dataset], seed=seed),
            seed=seed,
        )
    else:
        path = Path(dataset)
        if not path.exists():
            raise SystemExit(
                f"unknown dataset {dataset!r}: not in {DATASETS} nor a file"
            )
        yield random_split(f"{path.name} 90/10", *read_ratings_file(path), seed=seed)


def dataset_label(dataset: str) -> str:
    if dataset in DATASETS:
        return dataset
    name = Path(dataset).name
    for ext in (".gz", ".csv", ".tsv", ".dat", ".data", ".txt"):
        name = name.removesuffix(ext)
    return name


# -------------------------------------------------------------- machine info
def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _ram_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return float("nan")


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _java_version() -> str | None:
    try:
        out = subprocess.run(
            ["java", "-version"], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return (out.stderr or out.stdout).splitlines()[0].strip() if out else None


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(REPO_DIR), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = out.stdout.strip() or None
    try:
        dirty = subprocess.run(
            ["git", "-C", str(REPO_DIR), "status", "--porcelain", "--", "skmf"],
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        dirty = ""
    if commit and dirty:
        commit += " (skmf/ has uncommitted changes)"
    return commit


def machine_info() -> dict:
    """CPU, cores, RAM, OS, Python and library versions, date."""
    import torch

    physical = None
    try:
        import psutil

        physical = psutil.cpu_count(logical=False)
    except ImportError:
        pass
    info = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"
        ),
        "cpu": _cpu_model(),
        "logical_cores": os.cpu_count(),
        "physical_cores": physical,
        "ram_gib": _ram_gib(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "java": _java_version(),
        "skmf_git_commit": _git_commit(),
        "versions": {
            name: _version(name)
            for name in (
                "skmf",
                "torch",
                "numpy",
                "scipy",
                "pandas",
                "scikit-learn",
                "scikit-surprise",
                "libmf",
                "cornac",
                "pyspark",
                "pyarrow",
                "psutil",
            )
        },
    }
    return info


# -------------------------------------------------------------------- memory
def _status_kib(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False if not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        return False
    hwm, rss = _status_kib("VmHWM"), _status_kib("VmRSS")
    return hwm is not None and rss is not None and hwm <= rss + 1024


class PeakMemory:
    """Peak RSS of this process over a ``with`` block, MiB.

    ``peak_increase_mib`` is the peak minus the RSS at the start of the block,
    ``peak_rss_mib`` the peak itself (data, imports and all).

    Uses the kernel's high-water mark (``VmHWM``, reset through
    ``/proc/self/clear_refs``) where it can, else samples the RSS with psutil
    every 10 ms. With ``children=True`` it also samples the total RSS of the
    child processes (a JVM, say) every 50 ms.
    """

    def __init__(self, children: bool = False):
        self.children = children
        self.peak_increase_mib = float("nan")
        self.peak_rss_mib = float("nan")
        self.children_peak_mib = None
        self.method = None

    def _sample(self, proc, sample_self: bool):
        while not self._stop.wait(0.01 if sample_self else 0.05):
            try:
                if sample_self:
                    self._self_peak = max(self._self_peak, proc.memory_info().rss)
                if self.children:
                    total = 0
                    for child in proc.children(recursive=True):
                        try:
                            total += child.memory_info().rss
                        except Exception:  # noqa: BLE001 - child may be gone
                            pass
                    self._child_peak = max(self._child_peak, total)
            except Exception:  # noqa: BLE001 - never break a benchmark on this
                pass

    def __enter__(self):
        self._base_kib = _status_kib("VmRSS")
        self._hwm = _reset_peak_rss()
        self._stop = threading.Event()
        self._self_peak = 0
        self._child_peak = 0
        self._thread = None
        need_sampler = self.children or not self._hwm
        if need_sampler:
            try:
                import psutil

                proc = psutil.Process()
                self._self_peak = proc.memory_info().rss
                if self._base_kib is None:
                    self._base_kib = self._self_peak // 1024
                self._thread = threading.Thread(
                    target=self._sample, args=(proc, not self._hwm), daemon=True
                )
                self._thread.start()
            except ImportError:
                pass
        return self

    def __exit__(self, *exc):
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self._hwm:
            self.method = "VmHWM"
            peak_kib = _status_kib("VmHWM")
        elif self._thread is not None:
            self.method = "psutil sampling (10 ms)"
            peak_kib = self._self_peak / 1024
        if self.method is not None:
            self.peak_rss_mib = peak_kib / 1024
            self.peak_increase_mib = (peak_kib - self._base_kib) / 1024
        if self.children and self._thread is not None:
            self.children_peak_mib = self._child_peak / 2**20
        return False


# ------------------------------------------------------ load of the machine
def _cpu_busy_seconds() -> float | None:
    """CPU seconds (all cores) spent busy since boot, from /proc/stat."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except (OSError, IndexError):
        return None
    ticks = [int(x) for x in fields]
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle + iowait
    return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def busy_fraction(interval: float = 1.0) -> float | None:
    """Fraction of all cores busy over ``interval`` seconds (0..1)."""
    before = _cpu_busy_seconds()
    time.sleep(interval)
    after = _cpu_busy_seconds()
    if before is None or after is None:
        return None
    return (after - before) / (interval * (os.cpu_count() or 1))


def wait_until_idle(max_wait: float, threshold: float = 0.15) -> float | None:
    """Wait (at most ``max_wait`` s) for the machine to be idle; last busy frac."""
    deadline = time.monotonic() + max_wait
    busy = busy_fraction(1.0) if max_wait > 0 else None
    while busy is not None and busy > threshold and time.monotonic() < deadline:
        busy = busy_fraction(2.0)
    return busy


def _children_cpu_seconds() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


# ----------------------------------------------------------- child processes
def run_worker(
    spec: dict, workdir: Path, timeout: float | None = None, env: dict | None = None
) -> dict:
    """Run ``_worker.py`` on ``spec`` in a fresh Python process; its result.

    Also measures how much CPU *other* processes used while it ran (busy CPU
    time of the machine minus the worker's own), as ``foreign_cpu_frac``: the
    fraction of all cores taken by someone else. Timings with a large value
    are not to be trusted on a shared machine.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    tag = f"{spec['label']}-{spec.get('fold', 0)}-{spec.get('repeat', 0)}"
    tag = "".join(c if c.isalnum() or c in "-_." else "_" for c in tag)
    spec_path = workdir / f"{tag}.spec.json"
    out_path = workdir / f"{tag}.result.json"
    log_path = workdir / f"{tag}.log"
    spec_path.write_text(json.dumps(spec))
    if out_path.exists():
        out_path.unlink()
    cmd = [sys.executable, str(BENCH_DIR / "_worker.py"), str(spec_path), str(out_path)]
    busy0, cpu0 = _cpu_busy_seconds(), _children_cpu_seconds()
    start = time.perf_counter()
    with open(log_path, "w") as log:
        try:
            proc = subprocess.run(
                cmd,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=timeout,
                check=False,
                env={**os.environ, **env} if env else None,
            )
            rc = proc.returncode
        except subprocess.TimeoutExpired:
            rc = "timeout"
    wall = time.perf_counter() - start
    busy1, cpu1 = _cpu_busy_seconds(), _children_cpu_seconds()
    if out_path.exists():
        result = json.loads(out_path.read_text())
    else:
        tail = log_path.read_text(errors="replace").strip().splitlines()[-15:]
        result = {"status": "failed", "error": f"exit {rc}: " + " | ".join(tail)}
    # CPU of the worker, its reaped children and its still-running ones (JVM).
    own = cpu1 - cpu0 + result.get("live_children_cpu_s", 0.0)
    foreign = None
    if busy0 is not None and busy1 is not None:
        foreign = max(0.0, (busy1 - busy0) - own) / (wall * (os.cpu_count() or 1))
    result["process_wall_s"] = wall
    result["worker_cpu_s"] = own
    result["foreign_cpu_frac"] = foreign
    return result


# -------------------------------------------------------------------- output
def fmt(value, digits=2, width=None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        text = "-"
    elif isinstance(value, float):
        text = f"{value:.{digits}f}"
    else:
        text = str(value)
    return text if width is None else text.rjust(width)


def render_table(columns, rows) -> str:
    """Plain-text table; ``columns`` is a list of (title, key, formatter)."""
    cells = [[title for title, _, _ in columns]]
    for row in rows:
        cells.append([f(row.get(key)) for _, key, f in columns])
    widths = [max(len(r[j]) for r in cells) for j in range(len(columns))]
    lines = []
    for n, r in enumerate(cells):
        parts = [
            r[j].ljust(widths[j]) if j < 2 else r[j].rjust(widths[j])
            for j in range(len(columns))
        ]
        lines.append("  ".join(parts).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _no_nan(obj):
    """NaN and inf become None (null), so the file is strict JSON."""
    if isinstance(obj, dict):
        return {k: _no_nan(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_no_nan(v) for v in obj]
    if isinstance(obj, float | np.floating) and not math.isfinite(obj):
        return None
    return obj


def write_json(path: Path, payload: dict) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)

    def default(obj):
        if isinstance(obj, np.integer):
            return int(obj)
        if isinstance(obj, np.floating):
            return float(obj)
        if isinstance(obj, np.ndarray):
            return obj.tolist()
        return str(obj)

    text = json.dumps(_no_nan(payload), indent=2, default=default)
    path.write_text(text + "\n")

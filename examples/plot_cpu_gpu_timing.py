"""
=======================================
Fit time against the number of ratings
=======================================

How long does a fit take as the data grows, next to other libraries? This
example does not time anything itself: it plots the results that the
benchmark scripts of the repository (``benchmarks/run.py``,
``benchmarks/scaling.py``) stored as JSON files in ``docs/benchmarks_results/``
(see :doc:`/benchmarks` for the tables, machines and versions). The stored
results are CPU timings; runs on a GPU (``--device cuda``) appear in the plot
when their files are there too.
"""

# %%
# Reading the stored results
# --------------------------
# Every file holds a ``header`` (machine, device, command) and ``rows``: one
# per system (peer comparisons, the number of training ratings is in the
# header's ``splits``) or one per (variant, size) (scaling runs, with
# ``n_train``). Each gives a fit time ``fit_s`` for a number of training
# ratings.
import json
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, LogLocator

try:  # run as a script
    here = Path(__file__).resolve().parent
except NameError:  # run by sphinx-gallery, from the examples folder
    here = Path.cwd()
candidates = [here / ".." / "docs" / "benchmarks_results", here / "benchmarks_results"]
results_dir = next((p for p in candidates if p.is_dir()), candidates[0])


def read_results(folder):
    """One row per run: system, data set, device, training ratings, fit time."""
    records = []
    for path in sorted(folder.glob("*.json")):
        try:
            data = json.loads(path.read_text())
        except ValueError:
            print(f"skipping {path.name}: not valid JSON")
            continue
        header = data.get("header", {})
        device = header.get("device", "cpu")
        machine = header.get("machine") or {}
        gpu = machine.get("cuda")
        synthetic = header.get("mode") == "scaling"  # make_ratings data
        dataset = "synthetic" if synthetic else header.get("dataset")
        splits = header.get("splits") or []
        split_train = splits[0].get("n_train") if splits else None
        for row in data.get("rows", []):
            if row.get("status", "ok") != "ok" or row.get("fit_s") is None:
                continue
            n_train = row.get("n_train") or split_train or row.get("n_ratings")
            if not n_train or not dataset:
                continue
            records.append(
                {
                    "system": row.get("label") or row.get("system") or "?",
                    "dataset": dataset,
                    "device": "gpu" if str(device).startswith("cuda") else device,
                    "hardware": gpu if str(device).startswith("cuda") else None,
                    "n_train": n_train,
                    "fit_s": row["fit_s"],
                    "file": path.name,
                }
            )
    return pd.DataFrame(records)


results = read_results(results_dir) if results_dir.is_dir() else pd.DataFrame()
measured = not results.empty

# %%
# Without result files (the benchmarks have not been run on this checkout),
# the plot falls back to a small table typed in here: fit times measured on
# 2 CPU cores (2026-11-26, see :doc:`/benchmarks`), not measurements of this
# build.
if measured:
    n_files = results["file"].nunique()
    print(f"read {n_files} result file(s) from docs/benchmarks_results/")
else:
    print(
        "No benchmark results in docs/benchmarks_results/: plotting the inline "
        "reference table instead (CPU only)."
    )
    results = pd.DataFrame(
        [  # system, data set, training ratings, fit seconds on 2 CPU cores
            ("skmf", "ml-100k", 80_000, 0.07),
            ("LIBMF", "ml-100k", 80_000, 0.06),
            ("Cornac MF", "ml-100k", 80_000, 0.09),
            ("Surprise SVD", "ml-100k", 80_000, 0.28),
            ("torch recipe", "ml-100k", 80_000, 2.04),
            ("Spark ALS", "ml-100k", 80_000, 7.36),
            ("skmf", "ml-1m", 900_188, 0.30),
            ("LIBMF", "ml-1m", 900_188, 0.38),
            ("Cornac MF", "ml-1m", 900_188, 1.20),
            ("Surprise SVD", "ml-1m", 900_188, 9.95),
            ("Spark ALS", "ml-1m", 900_188, 14.4),
            ("torch recipe", "ml-1m", 900_188, 19.7),
        ],
        columns=["system", "dataset", "n_train", "fit_s"],
    ).assign(device="cpu", hardware=None)

keys = ["system", "dataset", "device", "n_train"]
summary = results.groupby(keys, as_index=False)["fit_s"].median().sort_values(keys)
summary

# %%
# The plot
# --------
# One colour per system. The marker says which data: a circle for MovieLens
# 100K, a square for MovieLens 1M, small dots joined by a line for the
# synthetic ratings of ``scaling.py`` (one generator, at growing sizes). Lines
# join only points of that one series: two MovieLens data sets are different
# data, not one curve. Filled markers and solid lines are CPU runs; hollow
# markers and dashed lines GPU runs. Both axes are logarithmic: a line of
# slope 1 is a fit time proportional to the number of ratings.
systems = list(dict.fromkeys(summary["system"]))
# tab10's ten colours, then black: distinct colours for up to 11 systems.
palette = [*plt.get_cmap("tab10").colors, (0.0, 0.0, 0.0)]
colors = {s: palette[j % len(palette)] for j, s in enumerate(systems)}
markers = {"ml-100k": "o", "ml-1m": "s", "synthetic": "."}
devices = list(dict.fromkeys(summary["device"]))
has_gpu = "gpu" in devices

fig, ax = plt.subplots(figsize=(11, 5.5), layout="constrained")
groups = summary.groupby(["system", "dataset", "device"], sort=False)
for (system, dataset, device), rows in groups:
    filled = device == "cpu"
    line = dataset == "synthetic"  # one series of growing sizes
    ax.plot(
        rows["n_train"],
        rows["fit_s"],
        linestyle=("-" if filled else "--") if line else "none",
        marker=markers.get(dataset, "^"),
        markersize=9 if line else 7,
        color=colors[system],
        markerfacecolor=colors[system] if filled else "none",
    )
ax.set_xscale("log")
ax.set_yscale("log")


def count_label(value, _):
    """100000 -> '100k', 2500000 -> '2.5M'."""
    for scale, suffix in ((1e6, "M"), (1e3, "k")):
        if value >= scale:
            return f"{value / scale:g}{suffix}"
    return f"{value:g}"


for axis, fmt in ((ax.xaxis, count_label), (ax.yaxis, lambda v, _: f"{v:g}")):
    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(fmt))
    axis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
ax.set_xlabel("number of training ratings")
ax.set_ylabel("fit time (s)")
ax.grid(True, which="major", alpha=0.3)
ax.grid(True, which="minor", alpha=0.1)
where = "on the CPU and a GPU" if has_gpu else "on the CPU"
if measured:
    ax.set_title(f"Fit time vs number of training ratings {where}")
else:
    ax.set_title(f"Reference fit times {where} (inline table, not measured here)")

# Two legends beside the axes, where they hide no point: the colours (systems)
# and the markers (data sets, and devices when there are GPU runs).
system_handles = [
    Line2D([], [], color=colors[s], marker="o", linestyle="none", label=s)
    for s in systems
]
names = {"ml-100k": "MovieLens 100K", "ml-1m": "MovieLens 1M"}
data_handles = [
    Line2D(
        [],
        [],
        color="0.3",
        marker=markers.get(d, "^"),
        linestyle="-" if d == "synthetic" else "none",
        label=names.get(d, f"{d} (scaling.py)" if d == "synthetic" else d),
    )
    for d in dict.fromkeys(summary["dataset"])
]
if has_gpu:
    data_handles += [
        Line2D([], [], color="0.3", marker="o", linestyle="none", label="CPU"),
        Line2D(
            [], [], color="0.3", marker="o", markerfacecolor="none",
            linestyle="none", label="GPU (hollow, dashed)",
        ),
    ]  # fmt: skip
fig.legend(
    handles=system_handles, title="system", fontsize=8, loc="outside right upper"
)
fig.legend(handles=data_handles, title="data", fontsize=8, loc="outside right lower")
plt.show()

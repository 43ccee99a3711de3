"""
===================================================
Fit time against the number of ratings, CPU and GPU
===================================================

How long does a fit take as the data grows, on the CPU and on a GPU, next to
other libraries? This example does not time anything itself: it plots the
results that the benchmark scripts of the repository (``benchmarks/run.py``,
``benchmarks/scaling.py``) stored as JSON files in ``docs/benchmarks_results/``
(see :doc:`/benchmarks` for the tables, machines and versions).
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
from matplotlib.ticker import FuncFormatter, LogLocator

try:  # run as a script
    here = Path(__file__).resolve().parent
except NameError:  # run by sphinx-gallery, from the examples folder
    here = Path.cwd()
candidates = [here / ".." / "docs" / "benchmarks_results", here / "benchmarks_results"]
results_dir = next((p for p in candidates if p.is_dir()), candidates[0])


def read_results(folder):
    """One row per (system, device, number of training ratings)."""
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
        splits = header.get("splits") or []
        split_train = splits[0].get("n_train") if splits else None
        for row in data.get("rows", []):
            if row.get("status", "ok") != "ok" or row.get("fit_s") is None:
                continue
            n_train = row.get("n_train") or split_train or row.get("n_ratings")
            if not n_train:
                continue
            system = row.get("label") or row.get("system") or "?"
            records.append(
                {
                    "system": f"{system}, synthetic" if synthetic else system,
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
# Without result files (the benchmarks have not been run yet on this
# checkout), the plot falls back to a small table typed in here: reference
# fit times on a 2-core CPU, from the benchmark notes of the project, not
# measurements of this build. GPU results are pending in that case.
if measured:
    n_files = results["file"].nunique()
    print(f"read {n_files} result file(s) from docs/benchmarks_results/")
else:
    print(
        "No benchmark results in docs/benchmarks_results/: plotting the inline "
        "reference table instead (CPU only; GPU results pending)."
    )
    results = pd.DataFrame(
        [  # system, training ratings, fit seconds on 2 CPU cores (2026-11-26)
            ("skmf", 80_000, 0.07),
            ("LIBMF", 80_000, 0.06),
            ("Cornac MF", 80_000, 0.09),
            ("Surprise SVD", 80_000, 0.28),
            ("torch recipe", 80_000, 2.04),
            ("Spark ALS", 80_000, 7.36),
            ("skmf", 900_188, 0.30),
            ("LIBMF", 900_188, 0.38),
            ("Cornac MF", 900_188, 1.20),
            ("Surprise SVD", 900_188, 9.95),
            ("Spark ALS", 900_188, 14.4),
            ("torch recipe", 900_188, 19.7),
        ],
        columns=["system", "n_train", "fit_s"],
    ).assign(device="cpu", hardware=None)

summary = (
    results.groupby(["system", "device", "n_train"], as_index=False)["fit_s"]
    .median()
    .sort_values(["system", "device", "n_train"])
)
summary

# %%
# The plot
# --------
# One colour per system, solid lines and circles for the CPU, dashed lines and
# squares for the GPU. Both axes are logarithmic: a straight line of slope 1
# is a fit time proportional to the number of ratings.
systems = list(dict.fromkeys(summary["system"]))
cmap = plt.get_cmap("tab10" if len(systems) <= 10 else "tab20")
colors = {s: cmap(j % cmap.N) for j, s in enumerate(systems)}
styles = {"cpu": ("-", "o"), "gpu": ("--", "s")}

fig, ax = plt.subplots(figsize=(11, 5.5), layout="constrained")
for (system, device), rows in summary.groupby(["system", "device"], sort=False):
    line, marker = styles.get(device, (":", "^"))
    ax.plot(
        rows["n_train"],
        rows["fit_s"],
        linestyle=line,
        marker=marker,
        color=colors[system],
        label=f"{system} ({device})",
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
if measured:
    ax.set_title("Fit time vs number of ratings (stored benchmark results)")
else:
    ax.set_title(
        "Reference fit times on 2 CPU cores (inline table, not measured here;\n"
        "GPU results pending)"
    )
# The legend goes beside the axes, where it hides no point.
fig.legend(fontsize=8, loc="outside right upper")
plt.show()

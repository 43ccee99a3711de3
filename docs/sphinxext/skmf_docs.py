"""Build-time helpers of the skmf documentation.

``conf.py`` calls :func:`generate`, which writes reST fragments into
``docs/_generated/`` that the pages include:

- ``cli_<command>.txt``: the ``--help`` of the ``skmf`` command and of each
  subcommand (``cli.rst``);
- ``benchmarks_tables.rst`` and ``accuracy_tables.rst``: tables rendered from
  the JSON files of ``docs/benchmarks_results/`` (``benchmarks.rst``,
  ``accuracy.rst``);
  (``api.rst``), and their pages in ``docs/generated/``.

It also gives the gallery its order (:func:`example_order`).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import string
from pathlib import Path

DOCS_DIR = Path(__file__).resolve().parents[1]
RESULTS_DIR = DOCS_DIR / "benchmarks_results"
GENERATED_DIR = DOCS_DIR / "_generated"

#: Gallery order; examples not listed come after, by file name.
EXAMPLE_ORDER = (
    "plot_quickstart.py",
    "plot_dataframe_pipeline.py",
    "plot_grid_search.py",
    "plot_learning_curves.py",
    "plot_item_embedding.py",
    "plot_recommend_new_user.py",
    "plot_cpu_gpu_timing.py",
)

CLI_COMMANDS = ("demo", "fit", "evaluate", "recommend")


def example_order(filename: str):
    """Sort key of the gallery examples (``within_subsection_order``)."""
    name = os.path.basename(filename)
    rank = EXAMPLE_ORDER.index(name) if name in EXAMPLE_ORDER else len(EXAMPLE_ORDER)
    return rank, name


# ------------------------------------------------------------------ helpers
def _write_if_changed(path: Path, text: str) -> None:
    """Write ``text`` unless the file already holds it (keeps Sphinx's cache)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")


# Characters with a meaning in inline reST; '.', ',', '(', ... are safe.
_SPECIAL = set(string.punctuation) - set(".,;()%/='\"!?&")


def rst_escape(value) -> str:
    """Plain text for a table cell: every reST markup character escaped."""
    text = " ".join(str(value).split())
    text = "".join("\\" + c if c in _SPECIAL else c for c in text)
    if re.match(r"^\w{1,3}[.)](\s|$)", text):  # would start an enumerated list
        text = "\\" + text
    return text or "\\ "


def list_table(header: list[str], rows: list[list[str]], indent: str = "") -> str:
    """A ``list-table`` directive; cells must already be reST-escaped."""
    lines = [f"{indent}.. list-table::", f"{indent}   :header-rows: 1", ""]
    for row in [header, *rows]:
        for j, cell in enumerate(row):
            lines.append(f"{indent}   {'*' if j == 0 else ' '} - {cell}")
    return "\n".join(lines) + "\n"


def section(title: str, char: str) -> str:
    text = rst_escape(title)
    return f"{text}\n{char * len(text)}\n\n"


# ----------------------------------------------------------------- CLI help
def write_cli_help(outdir: Path = GENERATED_DIR) -> None:
    """The ``--help`` text of ``skmf`` and its subcommands, 80 columns wide."""
    from skmf._cli import main

    previous = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "80"
    try:
        for command in ("", *CLI_COMMANDS):
            buffer = io.StringIO()
            with contextlib.redirect_stdout(buffer):
                main([command, "--help"] if command else ["--help"])
            name = f"cli_{command or 'skmf'}.txt"
            _write_if_changed(outdir / name, buffer.getvalue())
    finally:
        if previous is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = previous


# ------------------------------------------------------- benchmark results
def _num(digits: int):
    def fmt(value):
        return f"{value:,.{digits}f}"

    return fmt


def _signed(value):
    return f"{value:+.4f}"


def _millions(value):
    return f"{value / 1e6:,.2f}M" if value >= 1e5 else f"{value:,}"


def _fold_list(value):
    return ", ".join(f"{v:.4f}" for v in value)


#: Known row keys of the benchmark scripts: key, column title, formatter.
#: A column is shown when at least one row has a value for it.
TIMING_COLUMNS = [
    ("task", "task", str),
    ("system", "system", str),
    ("label", "variant", str),
    ("settings", "settings", str),
    ("n_ratings", "ratings", _millions),
    ("n_users", "users", _num(0)),
    ("n_items", "items", _num(0)),
    ("n_train", "train ratings", _num(0)),
    ("rmse", "test RMSE", _num(4)),
    ("d_rmse", "skmf − peer RMSE", _signed),
    ("fit_s", "fit s", _num(2)),
    ("n_iter", "iterations", str),
    ("s_per_iter", "s / iteration", _num(3)),
    ("iter_s", "one iteration alone, s", _num(4)),
    ("s_per_m", "fit s per M ratings", _num(3)),
    ("predict_s", "predict s", _num(3)),
    ("n_predictions", "predictions", _millions),
    ("best_s", "best s", _num(3)),
    ("predictions_per_s_best", "predictions / s", _millions),
    ("seconds", "seconds", _num(4)),
    ("per_item", "per query", str),
    ("peak_mib", "peak MiB (RSS increase during fit)", _num(0)),
    ("peak_rss_mib", "peak RSS MiB (whole process)", _num(0)),
    ("gpu_peak_mib", "GPU peak MiB", _num(0)),
    ("skmf_fit_ratio", "skmf / peer fit time", _num(2)),
    ("skmf_predict_ratio", "skmf / peer predict time", _num(2)),
    ("other_load_pct", "other load %", _num(0)),
    ("notes", "notes", str),
]

ACCURACY_COLUMNS = [
    ("system", "system", str),
    ("label", "variant", str),
    ("settings", "settings", str),
    ("n_ratings", "ratings", _millions),
    ("rmse", "test RMSE", _num(4)),
    ("d_rmse", "skmf − peer RMSE", _signed),
    ("rmse_per_fold", "RMSE per fold", _fold_list),
    ("n_runs", "runs", str),
    ("fit_s", "fit s", _num(2)),
    ("notes", "notes", str),
]


def load_results(results_dir: Path = RESULTS_DIR) -> list[tuple[str, object]]:
    """(file name, parsed JSON or the error message) of every ``*.json``."""
    out = []
    for path in sorted(results_dir.glob("*.json")):
        try:
            out.append((path.name, json.loads(path.read_text(encoding="utf-8"))))
        except (OSError, ValueError) as exc:
            out.append((path.name, f"could not be read: {exc}"))
    return out


def _title(name: str, data: dict) -> str:
    header = data.get("header", {}) if isinstance(data, dict) else {}
    what = header.get("dataset") or header.get("mode")
    if str(name).startswith("recommend-"):
        what = f"serving: recommend, similar items, fold-in ({what})"
    elif what == "scaling":
        what = "fit time vs number of ratings (synthetic data)"
    elif what == "predict":
        what = "prediction throughput"
    device = header.get("device")
    if what and device:
        return f"{what} on {device}"
    return what or Path(name).stem


def _machine_line(header: dict) -> str:
    m = header.get("machine") or {}
    versions = m.get("versions") or {}
    parts = []
    if m.get("cpu"):
        cores = m.get("logical_cores")
        parts.append(f"{m['cpu']}" + (f", {cores} logical cores" if cores else ""))
    if m.get("ram_gib"):
        parts.append(f"{m['ram_gib']} GiB RAM")
    if m.get("cuda"):
        parts.append(f"GPU {m['cuda']}")
    if m.get("torch_threads"):
        parts.append(f"{m['torch_threads']} torch threads")
    if m.get("python"):
        parts.append(f"Python {m['python']}")
    for lib in ("torch", "skmf"):
        if versions.get(lib):
            parts.append(f"{lib} {versions[lib]}")
    if m.get("skmf_git_commit"):
        parts.append(f"commit {str(m['skmf_git_commit'])[:10]}")
    if m.get("date"):
        parts.append(f"measured {m['date']}")
    return "; ".join(parts)


def _splits_line(header: dict) -> str:
    splits = header.get("splits") or []
    if not splits:
        return ""
    first = splits[0]
    desc = f"{len(splits)} split(s)"
    if "n_train" in first and "n_test" in first:
        desc += f", the first with {first['n_train']:,} training and "
        desc += f"{first['n_test']:,} test ratings"
    names = [str(s.get("split")) for s in splits if s.get("split")]
    if names:
        desc += " (" + ", ".join(names) + ")"
    return desc


def _cell(value, fmt) -> str:
    if value is None or value == "" or value == []:
        return "–"
    try:
        return rst_escape(fmt(value))
    except (TypeError, ValueError):
        return rst_escape(value)


def _table(rows: list[dict], columns) -> str:
    rows = [r for r in rows if isinstance(r, dict)]
    used = [c for c in columns if any(r.get(c[0]) not in (None, "") for r in rows)]
    if len(used) < 2:  # an unknown schema: every scalar key
        keys: list[str] = []
        for r in rows:
            for key, value in r.items():
                if key not in keys and isinstance(value, str | int | float | bool):
                    keys.append(key)
        used = [(k, k, str) for k in keys[:12]]
    if not used:
        return ""
    body = []
    for r in rows:
        cells = [_cell(r.get(key), fmt) for key, _, fmt in used]
        status = r.get("status")
        if status not in (None, "ok") and used[-1][0] == "notes":
            cells[-1] = rst_escape(f"{status}: {r.get('notes') or ''}")
        body.append(cells)
    return list_table([rst_escape(title) for _, title, _ in used], body)


def render_results(entries, columns, only_rmse: bool = False) -> str:
    """reST sections, one per result file."""
    parts = []
    for name, data in entries:
        if isinstance(data, str):
            parts.append(section(name, "-") + rst_escape(f"{name} {data}") + "\n\n")
            continue
        rows = data.get("rows", []) if isinstance(data, dict) else data
        if not isinstance(rows, list):
            rows = []
        header = data.get("header", {}) if isinstance(data, dict) else {}
        if only_rmse and (
            header.get("mode") in ("scaling", "predict")  # synthetic data
            or str(header.get("dataset", "")).startswith("synthetic")
            or not any(isinstance(r, dict) and "rmse" in r for r in rows)
        ):
            continue
        text = section(_title(name, data), "-")
        facts = [f"File ``{name}``."]
        if _machine_line(header):
            facts.append("Machine: " + rst_escape(_machine_line(header)) + ".")
        if _splits_line(header):
            facts.append("Data: " + rst_escape(_splits_line(header)) + ".")
        if isinstance(header.get("data"), str):
            facts.append("Data: " + rst_escape(header["data"]))
        text += "\n".join(facts) + "\n\n"
        if header.get("command"):
            command = str(header["command"]).replace("\n", " ")
            text += f".. code-block:: text\n\n   {command}\n\n"
        table = _table(rows, columns)
        if table:
            text += table + "\n"
        elif header.get("table"):
            lines = header["table"]
            lines = lines.splitlines() if isinstance(lines, str) else lines
            text += ".. code-block:: text\n\n"
            text += "".join(f"   {line}\n" for line in lines) + "\n"
        parts.append(text)
    return "".join(parts)


def write_benchmark_tables(
    results_dir: Path = RESULTS_DIR, outdir: Path = GENERATED_DIR
) -> None:
    entries = load_results(results_dir) if results_dir.is_dir() else []
    pending = (
        ".. note::\n\n   No result files in ``docs/benchmarks_results/`` when these "
        "pages were built:\n   the tables are pending.\n"
    )
    timing = render_results(entries, TIMING_COLUMNS)
    accuracy = render_results(entries, ACCURACY_COLUMNS, only_rmse=True)
    _write_if_changed(outdir / "benchmarks_tables.rst", timing or pending)
    _write_if_changed(outdir / "accuracy_tables.rst", accuracy or pending)


# ------------------------------------------------------------- optional API
# ------------------------------------------------------------------ entry
def generate() -> None:
    """Write every generated fragment; conf.py calls this before reading."""
    write_cli_help()
    write_benchmark_tables()

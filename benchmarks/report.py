"""Print benchmark rows as a table (reference, ours, ratio) and keep them as JSON history."""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from runtime.atomic_file import append_file, write_atomic

# Git-ignored: results belong to the machine that produced them.
RESULTS_DIR = Path(__file__).parent / "results"
HISTORY = RESULTS_DIR / "history.jsonl"


@dataclass
class Row:
    group: str
    name: str
    value: float
    unit: str
    reference: str = ""  # the row this one is compared with, in the same group
    ratio: float | None = None
    note: str = ""


def with_ratios(rows: list[Row]) -> list[Row]:
    by_name = {(r.group, r.name): r for r in rows}
    for row in rows:
        ref = by_name.get((row.group, row.reference))
        if ref is not None and ref is not row and ref.value > 0:
            row.ratio = row.value / ref.value
    return rows


def print_table(title: str, rows: list[Row], console: Console) -> None:
    table = Table(title=title, title_justify="left")
    for column in ("measurement", "value", "vs", "ratio", "note"):
        table.add_column(column, justify="right" if column in ("value", "ratio") else "left")
    for row in rows:
        table.add_row(
            row.name,
            f"{row.value:,.2f} {row.unit}" if abs(row.value) < 100 else f"{row.value:,.0f} {row.unit}",
            row.reference,
            f"{row.ratio:.2f}x" if row.ratio is not None else "",
            row.note,
        )
    console.print(table)


def machine_info() -> dict:
    """CPU model and core count (from /proc/cpuinfo where there is one), load, torch, GPU."""
    import torch

    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        load = "unknown"
    return {"cpu_model": model, "cpu_cores": os.cpu_count(), "load_average": load,
            "platform": platform.platform(), "python": platform.python_version(),
            "torch": torch.__version__,
            "cuda_device": torch.cuda.get_device_name() if torch.cuda.is_available() else None}


def save_json(rows: list[Row], extra: dict, results_dir: Path | None = None) -> Path:
    """One JSON file for this run, and the same record as one line of history.jsonl."""
    folder = results_dir or RESULTS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = folder / f"bench-{stamp}.json"
    payload = {"time": stamp, **extra, "rows": [asdict(r) for r in rows]}
    write_atomic(path, json.dumps(payload, indent=2).encode("utf-8"))
    with append_file(folder / HISTORY.name) as history:
        history.write((json.dumps(payload) + "\n").encode("utf-8"))
    return path

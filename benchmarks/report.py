"""Print benchmark rows as a table (reference, ours, ratio) and keep them as JSON history."""

from __future__ import annotations

import json
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

RESULTS_DIR = Path(__file__).parent / "results"


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
            f"{row.value:,.1f} {row.unit}",
            row.reference,
            f"{row.ratio:.2f}x" if row.ratio is not None else "",
            row.note,
        )
    console.print(table)


def save_json(rows: list[Row], extra: dict) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = RESULTS_DIR / f"bench-{stamp}.json"
    payload = {
        "time": stamp,
        "machine": {"platform": platform.platform(), "processor": platform.processor(),
                    "python": platform.python_version()},
        **extra,
        "rows": [asdict(r) for r in rows],
    }
    path.write_text(json.dumps(payload, indent=2))
    return path

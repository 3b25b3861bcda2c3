"""Write an export under a temporary name beside its target and move it into place only after its
parity check passed, so a failed export never leaves a bad file under the final name."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

from export.errors import ExportError
from export.parity import FP32_TOLERANCE, require_parity
from runtime.atomic_file import check_target, describe_os_error, prepare_staging, publish


def file_size(path: Path) -> str:
    n = path.stat().st_size
    return f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e3:.1f} kB"


@contextlib.contextmanager
def staged(target: Path) -> Iterator[Path]:
    """A temporary path beside `target`, moved over it only if the block succeeds."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(f"cannot create {target.parent}: {exc.strerror or exc}") from None
    staging = target.with_name(f".{target.name}.exporting")
    try:
        check_target(target)  # a link or device node there is refused before the export's work
        prepare_staging(staging)  # torch writes to a path: a planted link there must not redirect it
    except OSError as exc:
        raise ExportError(f"cannot write {target}: {describe_os_error(exc)}") from None
    try:
        yield staging
        publish(staging, target)  # the writers (torch.onnx, torch.jit) take a path
    except OSError as exc:
        raise ExportError(f"cannot write {target}: {describe_os_error(exc)}") from None
    finally:
        with contextlib.suppress(OSError):
            staging.unlink()


def write_logits_file(target: Path, write: Callable[[Path], object], parity: Callable[[Path], float],
                      report: Callable[[str], None]) -> None:
    """Stage `write`, require its max |Δlogits| vs torch (`parity`) within tolerance, move it into
    place and report both facts: the TorchScript export of a GPT or a layer stack."""
    with staged(target) as staging:
        write(staging)
        worst = parity(staging)
        require_parity(worst, target)
    report(f"wrote {target} ({file_size(target)})")
    report(f"  max |Δlogits| vs torch: {worst:.2e} (limit {FP32_TOLERANCE:.0e})")

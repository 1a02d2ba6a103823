"""What GetDiagnostics uploads: cp-pi's own log file, its recent OCPP frames, and one tar.gz.

The log file (``cp-pi.log`` in the data directory, beside the journal) rotates at a bounded
size, each line stamped in UTC so that a time window can be cut from it. The frames are kept in
memory, the newest few hundred, as the session hands them over (secrets already hidden).
"""

from __future__ import annotations

import io
import json
import logging
import logging.handlers
import tarfile
import time
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

LOG_FILE = "cp-pi.log"
_STAMP = "%Y-%m-%dT%H:%M:%SZ"


def attach_log_file(data_dir: Path, *, max_bytes: int, backups: int) -> logging.Handler | None:
    """Log to ``<data_dir>/cp-pi.log`` too, rotating; None (and a warning) if it cannot be."""
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        handler = logging.handlers.RotatingFileHandler(
            data_dir / LOG_FILE, maxBytes=max_bytes, backupCount=backups, encoding="utf-8"
        )
    except OSError as error:
        logging.getLogger("cp_pi").warning("no log file for GetDiagnostics: %s", error)
        return None
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", _STAMP)
    formatter.converter = time.gmtime
    handler.setFormatter(formatter)
    logging.getLogger().addHandler(handler)
    return handler


class FrameRing:
    """The newest OCPP frames, in and out: a frame observer for the link."""

    def __init__(self, limit: int) -> None:
        self._frames: deque[tuple[str, str, list[Any]]] = deque(maxlen=limit)

    def observe(self, direction: str, frame: list[Any]) -> None:
        stamp = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        self._frames.append((stamp, direction, frame))

    def lines(self) -> list[str]:
        """One JSON line per frame, oldest first (a copy: safe to hand to a thread)."""
        return [
            json.dumps({"time": t, "direction": d, "frame": f}, ensure_ascii=False)
            for t, d, f in self._frames
        ]


def log_lines(data_dir: Path, start: datetime | None, stop: datetime | None) -> Iterator[str]:
    """The log file's lines stamped within [start, stop], oldest file first; a line without a
    stamp (a traceback's) goes with the line before it."""
    files = sorted(
        data_dir.glob(f"{LOG_FILE}*"),
        key=lambda p: -int(p.suffix[1:]) if p.suffix[1:].isdigit() else 0,
    )
    keep = False
    for path in files:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        for line in text.splitlines(keepends=True):
            stamp = _stamp(line)
            if stamp is not None:
                keep = (start is None or stamp >= start) and (stop is None or stamp <= stop)
            if keep:
                yield line


def _stamp(line: str) -> datetime | None:
    try:
        return datetime.strptime(line[:20], _STAMP).replace(tzinfo=UTC)
    except ValueError:
        return None


def build_archive(
    target: Path,
    *,
    folder: str,
    log: Iterable[str],
    documents: Mapping[str, Any],
    frames: list[str],
) -> int:
    """Write the tar.gz: ``cp-pi.log``, each document as JSON, ``ocpp-frames.jsonl``.
    Returns its size in bytes."""
    partial = target.with_name(target.name + ".part")
    try:
        with tarfile.open(partial, "w:gz") as archive:
            members = {
                LOG_FILE: "".join(log),
                **{
                    f"{name}.json": json.dumps(doc, indent=2, default=str) + "\n"
                    for name, doc in documents.items()
                },
                "ocpp-frames.jsonl": "".join(f"{line}\n" for line in frames),
            }
            for name, text in members.items():
                data = text.encode("utf-8")
                info = tarfile.TarInfo(f"{folder}/{name}")
                info.size = len(data)
                info.mtime = int(time.time())
                info.mode = 0o644
                archive.addfile(info, io.BytesIO(data))
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    return target.stat().st_size

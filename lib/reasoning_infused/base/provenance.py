"""Code version, atomic JSON writes and timing: every result records what made it."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from reasoning_infused.base.locations import REPO_ROOT


def code_version() -> str:
    """`<git hash>` of the repository, with `-dirty` when tracked files differ from it; 'unknown' outside git."""
    try:
        h = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", "lib", "pyproject.toml"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        return h + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def lock_hash() -> str:
    """The first 12 hex digits of the SHA-256 of `requirements.lock` (the exact versions of every package the
    environment was made from), or 'no lock' outside a checkout that has one. Recorded beside every result."""
    import hashlib

    lock = REPO_ROOT / "requirements.lock"
    if not lock.exists():
        return "no lock"
    return hashlib.sha256(lock.read_bytes()).hexdigest()[:12]


def package_versions() -> dict[str, str]:
    """Versions of the packages that decide numerical results, recorded next to every result."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("torch", "transformers", "trl", "peft", "datasets", "accelerate", "numpy", "scikit-learn"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def peak_rss_gib() -> float:
    """Peak resident memory of this process so far (Linux: ru_maxrss is in KiB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def write_json(path: Path, obj: Any) -> None:
    """Write JSON atomically (temp file + rename): a crash never leaves a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=False, default=str)
        f.write("\n")
    os.chmod(tmp, 0o644)  # mkstemp creates 0600; results are meant to be read by others
    os.replace(tmp, path)


class CorruptFile(ValueError):
    """A saved file is damaged somewhere other than a torn last line; the message names the file and line."""


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Rows of a JSONL file; a torn last line (a kill mid-write) is ignored, a bad line elsewhere is an error."""
    path = Path(path)
    if not path.exists():
        return []
    lines = path.read_text().split("\n")
    rows = []
    for i, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as e:
            if i == len(lines) or (i == len(lines) - 1 and lines[-1] == ""):
                break  # the last line was cut by a kill: it is redone
            raise CorruptFile(
                f"{path}:{i}: not valid JSON ({e}); fix or delete that line (a stage that wrote it redoes missing rows)"
            ) from None
    return rows


def append_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    """Append rows with one write + fsync, so a batch lands whole or (cut mid-line) is ignored on reading."""
    if not rows:
        return
    data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    with open(path, "a", encoding="utf-8") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())

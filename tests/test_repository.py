"""Checks over the repository's own files: it must work from a clone in any folder."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Home and work folders of this and other machines, and this checkout's own location.
# (Written as a pattern so this file does not match itself.)
MACHINE_PATHS = re.compile(r"(?<![\w.$~-])/(?:work|root|home|Users)/[\w.-]+")


def repository_files() -> list[Path]:
    """The files git tracks, plus new ones not ignored; every file when git is missing."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout.decode()
    except (OSError, subprocess.CalledProcessError):
        skipped = {".git", ".venv", "var", "__pycache__", ".mypy_cache", ".ruff_cache"}
        return [
            path
            for path in ROOT.rglob("*")
            if path.is_file() and not skipped.intersection(path.relative_to(ROOT).parts)
        ]
    return [ROOT / name for name in listed.split("\0") if name and (ROOT / name).is_file()]


def test_no_file_names_an_absolute_path_of_this_machine() -> None:
    checkout = str(ROOT)
    found: list[str] = []
    files = repository_files()
    assert len(files) > 50, "the check sees the repository's files"
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # binary (images)
        for number, line in enumerate(text.splitlines(), start=1):
            if MACHINE_PATHS.search(line) or checkout in line:
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not found, (
        "files name absolute paths of one machine; use paths relative to the repository "
        "(e.g. Path(__file__).resolve().parents[n]):\n" + "\n".join(found)
    )

"""The dependency ranges in pyproject.toml and the lock files installed from them.

``make test``, CI and ``make run`` install requirements/dev.lock or run.lock with
``pip install --require-hashes``; these checks keep the locks true to pyproject.toml
(``make lock`` regenerates them).
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
RUNTIME = [Requirement(text) for text in PYPROJECT["project"]["dependencies"]]
DEV = [Requirement(text) for text in PYPROJECT["project"]["optional-dependencies"]["dev"]]

# The first release without a known advisory, for packages that had one. A floor in
# pyproject.toml below this admits a vulnerable version.
SAFE_FLOORS = {
    "gunicorn": "23.0.0",  # CVE-2024-1135, CVE-2024-6827
    "flask": "3.1.1",  # CVE-2025-47278
    "werkzeug": "3.1.6",  # CVE-2024-49766/49767, CVE-2025-66221, GHSA-87hc/29vq
    "jinja2": "3.1.6",  # CVE-2024-56201/56326, CVE-2025-27516
    "urllib3": "2.8.0",  # CVE-2025-66418/66471, CVE-2026-21441/44431/44432
    "certifi": "2024.7.4",  # CVE-2024-39689
    "requests": "2.33.0",  # CVE-2024-35195, CVE-2024-47081, CVE-2026-25645
    "aiohttp": "3.14.3",  # 2025-2026 advisories (via twilio)
    "pyjwt": "2.15.1",  # 2026 advisories (via twilio)
    "h11": "0.16.0",  # CVE-2025-43859
    "idna": "3.15",
    "pytest": "9.0.3",  # CVE-2025-71176
    "pygments": "2.20.0",  # CVE-2026-4539
    "pyyaml": "6.0.1",
}

PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", re.MULTILINE)


def locked(name: str) -> dict[str, Version]:
    text = (ROOT / "requirements" / name).read_text(encoding="utf-8")
    return {canonicalize_name(found[0]): Version(found[1]) for found in PIN.findall(text)}


def floor(requirement: Requirement) -> Version | None:
    floors = [Version(s.version) for s in requirement.specifier if s.operator in (">=", "==")]
    return max(floors, default=None)


def test_every_zero_x_dependency_has_an_upper_bound() -> None:
    unbounded = [
        str(req)
        for req in RUNTIME + DEV
        if (low := floor(req)) is not None
        and low.major == 0
        and not any(s.operator in ("<", "==", "~=") for s in req.specifier)
    ]
    assert unbounded == [], f"0.x releases may break anything: bound them ({unbounded})"


@pytest.mark.parametrize(("name", "safe"), sorted(SAFE_FLOORS.items()))
def test_floors_exclude_versions_with_known_advisories(name: str, safe: str) -> None:
    named = [req for req in RUNTIME + DEV if canonicalize_name(req.name) == name]
    assert named, f"pyproject.toml should name {name} with a floor of at least {safe}"
    low = floor(named[0])
    assert low is not None and low >= Version(safe), f"{named[0]}: raise the floor to {safe}"


@pytest.mark.parametrize(
    ("lock", "requirements"), [("run.lock", RUNTIME), ("dev.lock", RUNTIME + DEV)]
)
def test_the_locks_pin_every_dependency_within_its_range(
    lock: str, requirements: list[Requirement]
) -> None:
    pins = locked(lock)
    problems = []
    for req in requirements:
        version = pins.get(canonicalize_name(req.name))
        if version is None:
            problems.append(f"{req.name} is missing")
        elif not req.specifier.contains(version, prereleases=True):
            problems.append(f"{req.name}=={version} is outside {req.specifier}")
        for extra in req.extras:  # psycopg[binary] -> psycopg-binary
            if canonicalize_name(f"{req.name}-{extra}") not in pins:
                problems.append(f"{req.name}[{extra}] is missing")
    assert problems == [], f"requirements/{lock} is stale, run `make lock`: {problems}"


def test_every_pin_carries_hashes_and_both_locks_agree() -> None:
    for name in ("run.lock", "dev.lock"):
        text = (ROOT / "requirements" / name).read_text(encoding="utf-8")
        entries = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 2)[2])
        unhashed = [entry.split()[0] for entry in entries if "--hash=sha256:" not in entry]
        assert unhashed == [], f"{name}: pins without hashes {unhashed}"
    run, dev = locked("run.lock"), locked("dev.lock")
    assert set(run) <= set(dev)
    assert {name: version for name, version in run.items() if dev[name] != version} == {}


def test_make_installs_the_locks_with_hashes() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "pip install --quiet --require-hashes -r $(1)" in makefile
    assert "$(VENV)/.run-installed: $(RUN_LOCK)" in makefile
    assert "$(VENV)/.dev-installed: $(DEV_LOCK)" in makefile

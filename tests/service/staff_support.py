"""Shared by the staff account tests: flows at two libraries and a health centre, a
cheap password hasher, and an app with staff users added through the service layer."""

from __future__ import annotations

from pathlib import Path

from argon2 import PasswordHasher

LIBRARY_YAML = """\
id: library-visit
title:
  fi: Kirjastokäynti
  sv: Biblioteksbesök
  en: Library visit
languages: [fi, sv, en]
default_language: fi
service_points: [main-library, village-library]
triggers:
  codes:
    - code: main_library
      service_point: main-library
    - code: village_library
      service_point: village-library
closing:
  fi: Kiitos!
  sv: Tack!
  en: Thanks!
steps:
  - id: overall
    type: scale
    scale: "1-5"
    metric: csat
    text:
      fi: Miten käyntisi onnistui? Vastaa 1–5.
      sv: Hur gick ditt besök? Svara 1–5.
      en: How was your visit? Reply 1–5.
"""

HEALTH_YAML = """\
id: health-fft
title:
  fi: Terveysaseman palaute
  en: Health centre feedback
languages: [fi, en]
default_language: fi
service_points: [health-centre]
closing:
  fi: Kiitos!
  en: Thanks!
steps:
  - id: recommend
    type: scale
    scale: "1-5"
    text:
      fi: Suosittelisitko meitä? Vastaa 1–5.
      en: Would you recommend us? Reply 1–5.
"""

POINTS = ("health-centre", "main-library", "village-library")


def write_staff_flows(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "library-visit.yaml").write_text(LIBRARY_YAML, encoding="utf-8")
    (directory / "health-fft.yaml").write_text(HEALTH_YAML, encoding="utf-8")
    return directory


def cheap_hasher() -> PasswordHasher:
    """argon2id at its smallest cost: the same code path, a millisecond per hash."""
    return PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


# The settings that give the app the same cheap hasher (tests only).
CHEAP_ARGON2 = {"ARGON2_TIME_COST": 1, "ARGON2_MEMORY_KIB": 8, "ARGON2_PARALLELISM": 1}

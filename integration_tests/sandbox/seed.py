"""Deterministic, realistic fake people: unicode names, missing optional fields."""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta, timezone

GIVEN = ["Zoë", "Mateo", "Aiyana", "José", "Søren", "Chloé", "Björk", "Łukasz", "Anaïs",
         "Nguyễn", "Olu", "Mia", "Ren", "Amélie", "Kai", "Saoirse", "Dương", "Ana", "Noah", "Eli"]
FAMILY = ["Smith", "Müller", "O'Brien", "García", "Nakamura", "Kowalski", "Ødegaard", "Ng",
          "Van der Berg", "Öztürk", "李", "Иванова", "Dubois", "Silva", "Dvořák", "Brown"]
EPOCH = datetime(2023, 1, 1, tzinfo=timezone.utc)
ULID_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def rng(seed: str) -> random.Random:
    return random.Random(seed)


def ulid(r: random.Random) -> str:
    return "01" + "".join(r.choice(ULID_ALPHABET) for _ in range(24))


def uuid4(r: random.Random) -> str:
    return str(uuid.UUID(int=r.getrandbits(128), version=4))


def moment(r: random.Random, after: datetime = EPOCH, days: int = 700) -> datetime:
    return after + timedelta(seconds=r.randrange(days * 86400))


def iso(dt: datetime, millis: bool = False) -> str:
    if millis:
        return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def person(r: random.Random) -> tuple[str, str]:
    return r.choice(GIVEN), r.choice(FAMILY)


def email(r: random.Random, given: str, family: str, n: int) -> str:
    """given.family.n@example.com in ASCII; a name with no ASCII letter (李, Иванова) is left
    out rather than leaving two dots in a row, which no real address has."""
    parts = ["".join(c for c in name.lower() if c.isascii() and c.isalnum())
             for name in (given, family)]
    return f"{'.'.join(p for p in parts if p) or 'customer'}.{n}@example.com"


def maybe(r: random.Random, value: object, p: float = 0.8) -> object | None:
    """The value, or None (the field is left out) with probability 1 - p."""
    return value if r.random() < p else None

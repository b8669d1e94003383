"""Semantic Versioning 2.0.0 with the spec's precedence rules.

Firmware downgrade protection depends on ordering being exactly right,
pre-releases included (1.0.0-rc.2 < 1.0.0-rc.10 < 1.0.0), so string or tuple
comparisons are not good enough.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from core.errors import InvalidVersion

_SEMVER = re.compile(
    r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)(?:\.(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*))*))?"
    r"(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?"
)


@functools.total_ordering
@dataclass(frozen=True, slots=True)
class SemVer:
    major: int
    minor: int
    patch: int
    prerelease: tuple[str, ...] = ()
    build: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: object) -> SemVer:
        if not isinstance(text, str):
            raise InvalidVersion(f"version must be text like 1.4.2, got {text!r}")
        candidate = text.strip()
        if candidate.startswith(("v", "V")):
            candidate = candidate[1:]
        match = _SEMVER.fullmatch(candidate)
        if match is None:
            raise InvalidVersion(
                f"version {text!r} is not semantic versioning: expected MAJOR.MINOR.PATCH "
                "with optional -prerelease and +build, e.g. 2.1.0 or 2.1.0-rc.1"
            )
        major, minor, patch, pre, build = match.groups()
        return cls(
            int(major),
            int(minor),
            int(patch),
            tuple(pre.split(".")) if pre else (),
            tuple(build.split(".")) if build else (),
        )

    def __str__(self) -> str:
        text = f"{self.major}.{self.minor}.{self.patch}"
        if self.prerelease:
            text += "-" + ".".join(self.prerelease)
        if self.build:
            text += "+" + ".".join(self.build)
        return text

    @property
    def is_prerelease(self) -> bool:
        return bool(self.prerelease)

    def _precedence_key(self) -> tuple[int, int, int, int, tuple[tuple[int, int, str], ...]]:
        # A release ranks above all of its pre-releases; numeric identifiers
        # rank below alphanumeric ones and compare as numbers.
        pre = tuple(
            (0, int(part), "") if part.isdigit() else (1, 0, part) for part in self.prerelease
        )
        return (self.major, self.minor, self.patch, 0 if self.prerelease else 1, pre)

    def __eq__(self, other: object) -> bool:
        # Build metadata does not take part in precedence (SemVer 2.0.0 section 10).
        if not isinstance(other, SemVer):
            return NotImplemented
        return self._precedence_key() == other._precedence_key()

    def __hash__(self) -> int:
        return hash(self._precedence_key())

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, SemVer):
            return NotImplemented
        return self._precedence_key() < other._precedence_key()

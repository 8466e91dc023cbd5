"""Errors nftwl raises. Each carries enough context to say what to do next."""

from __future__ import annotations

from dataclasses import dataclass


class NftwlError(Exception):
    """Base class for every error nftwl raises on purpose."""


@dataclass(frozen=True)
class InputProblem:
    """One bad or notable line in an input: where it is and what is wrong with it."""

    origin: str
    """The file path (or other source name) the line came from."""
    line: int
    """1-based line number; 0 when the problem concerns the whole input."""
    text: str
    """The offending entry as written (comment stripped)."""
    reason: str
    """What is wrong, and where possible what was meant."""

    def __str__(self) -> str:
        where = f"{self.origin}:{self.line}" if self.line else self.origin
        shown = f" {self.text!r}:" if self.text else ""
        return f"{where}:{shown} {self.reason}"


class InputError(NftwlError):
    """An input (whitelist file, Redis value) could not be used; carries every problem found."""

    def __init__(self, problems: list[InputProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class ConfigError(NftwlError):
    """The configuration is invalid; the message names the file and the key."""


class BackendError(NftwlError):
    """The firewall backend could not be used (missing library, no permission)."""


class TransactionError(NftwlError):
    """The kernel refused a transaction; nothing of it took effect."""

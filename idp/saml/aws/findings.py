"""A finding: one rule broken (or risked), with AWS's words where known and the fix."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Finding:
    rule: str
    severity: str  # "error": AWS rejects it; "warning": risky or undocumented
    message: str

    def __str__(self) -> str:
        return f"{self.rule} {self.severity}: {self.message}"


def error(rule: str, message: str) -> Finding:
    return Finding(rule, "error", message)


def warning(rule: str, message: str) -> Finding:
    return Finding(rule, "warning", message)

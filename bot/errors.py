"""Errors a person reads. Each names the file, line and field, and says what would be valid."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ConfigProblem:
    file: str
    line: int  # 1-based; 0 when unknown
    field: str  # dotted path inside the file, e.g. "steps[3].ask.type"
    message: str  # what is wrong and what would be valid
    column: int = 0  # 1-based, when a character is to blame (a tab, a misplaced indent)

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        if self.line and self.column:
            where += f":{self.column}"
        field = f" {self.field}:" if self.field else ""
        return f"{where}:{field} {self.message}"


class ConfigError(Exception):
    """One or more problems in operator-written YAML (flows, content, triage rules, settings)."""

    def __init__(self, problems: list[ConfigProblem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class StepError(Exception):
    """A flow step failed at run time; the engine runs the internal-error repair flow."""

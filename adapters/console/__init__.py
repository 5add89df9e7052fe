"""The staff console: doctors, operators and customer service at /console (docs/console.md)."""

from adapters.console.adapter import ConsoleAdapter

__all__ = ["ConsoleAdapter"]

"""An in-process platform for tests, benchmarks and the conversation-test runner."""

from adapters.memory.adapter import MemoryAdapter

__all__ = ["MemoryAdapter"]

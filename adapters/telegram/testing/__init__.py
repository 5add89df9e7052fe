"""A fake Telegram Bot API for tests, the benchmark and local trials: a real HTTP server on loopback
(`FakeBotAPI`) and builders of the raw updates Telegram sends (`Updates`)."""

from adapters.telegram.testing.server import FakeBotAPI, Limits, SentMessage, Window
from adapters.telegram.testing.updates import Updates

__all__ = ["FakeBotAPI", "Limits", "SentMessage", "Updates", "Window"]

"""Web chat: patients chat with carebot in a browser — `/chat`, or the widget on a hospital's site."""

from adapters.webchat.adapter import WebchatAdapter

__all__ = ["WebchatAdapter"]

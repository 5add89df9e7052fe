"""Live fan-out inside one process: the open widgets (sockets and long polls) of each conversation.

A conversation may be open in several tabs. Each listener gets every frame pushed to its
conversation, in push order; a listener that cannot keep up is dropped (its widget reconnects and
asks for what it missed — the log, not this hub, is what guarantees delivery).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

Frame = dict[str, Any]


class Listener:
    def __init__(self, conversation_id: str, capacity: int = 1000):
        self.conversation_id = conversation_id
        self.queue: asyncio.Queue[Frame | None] = asyncio.Queue(capacity)
        self.overflowed = False

    def put(self, frame: Frame | None) -> None:
        try:
            self.queue.put_nowait(frame)
        except asyncio.QueueFull:
            self.overflowed = True


class Hub:
    def __init__(self) -> None:
        self._listeners: dict[str, set[Listener]] = defaultdict(set)

    def listen(self, conversation_id: str) -> Listener:
        listener = Listener(conversation_id)
        self._listeners[conversation_id].add(listener)
        return listener

    def leave(self, listener: Listener) -> None:
        group = self._listeners.get(listener.conversation_id)
        if group is not None:
            group.discard(listener)
            if not group:
                del self._listeners[listener.conversation_id]

    def push(self, conversation_id: str, frame: Frame) -> int:
        """Give `frame` to every open widget of the conversation; returns how many there were."""
        group = self._listeners.get(conversation_id, ())
        for listener in group:
            listener.put(frame)
        return len(group)

    def close_all(self) -> None:
        for group in self._listeners.values():
            for listener in group:
                listener.put(None)

    def __len__(self) -> int:
        return sum(len(g) for g in self._listeners.values())

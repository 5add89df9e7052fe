"""A conversation's state: the flow stack, slots, mode and locale. Plain data, JSON round-trip."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from bot.types import Address


@dataclass(slots=True)
class Frame:
    flow: str
    at: str  # label of the instruction to run next, or of the one we wait at
    wait: Literal["", "ask", "wait", "action"] = ""
    retries: int = 0
    timer: str = ""  # the wait-timeout timer's name while waiting
    call_id: str = ""  # the action call we wait for
    interrupted: bool = False  # another flow ran on top: re-ask when we come back


@dataclass(slots=True)
class State:
    conversation_id: str
    address: Address
    locale: str
    stack: list[Frame] = field(default_factory=list)
    slots: dict[str, Any] = field(default_factory=dict)
    mode: Literal["bot", "human"] = "bot"
    tags: list[str] = field(default_factory=list)
    turns: int = 0
    misunderstood: int = 0  # consecutive inputs nothing understood
    triage_level: str = ""  # highest level seen since the episode opened; never lowered
    ticket_id: str = ""  # the open hand-off ticket, if any
    last_ticket_id: str = ""  # the most recent ticket, kept after it closes (for its survey)
    opted_out: bool = False  # STOP/退订: no proactive messages
    # the episode's recent patient messages, [ISO time, text], screened together (safety stage)
    episode: list[list[str]] = field(default_factory=list)
    # a group member's standing in their group (bot/groups): joined, captcha, warnings. Not a slot,
    # so a flow's `clear: all` cannot wipe a member's warnings
    group: dict[str, Any] = field(default_factory=dict)
    version: int = 0  # optimistic-concurrency version, owned by the store

    @classmethod
    def new(cls, address: Address, locale: str) -> State:
        return cls(conversation_id=address.conversation_id, address=address, locale=locale)

    def clone(self) -> State:
        """A copy the engine may change without touching the caller's state."""
        # spelled out: dataclasses.replace costs several times more, on every message
        return State(
            self.conversation_id, self.address, self.locale,
            [Frame(f.flow, f.at, f.wait, f.retries, f.timer, f.call_id, f.interrupted) for f in self.stack],
            dict(self.slots), self.mode, list(self.tags), self.turns, self.misunderstood, self.triage_level,
            self.ticket_id, self.last_ticket_id, self.opted_out, [list(m) for m in self.episode],
            dict(self.group), self.version)

    @property
    def top(self) -> Frame | None:
        return self.stack[-1] if self.stack else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "conversation_id": self.conversation_id, "address": self.address.to_dict(),
            "locale": self.locale,
            "stack": [{"flow": f.flow, "at": f.at, "wait": f.wait, "retries": f.retries, "timer": f.timer,
                       "call_id": f.call_id, "interrupted": f.interrupted} for f in self.stack],
            "slots": self.slots, "mode": self.mode, "tags": list(self.tags), "turns": self.turns,
            "misunderstood": self.misunderstood, "triage_level": self.triage_level,
            "ticket_id": self.ticket_id, "last_ticket_id": self.last_ticket_id, "opted_out": self.opted_out,
            "episode": self.episode, "group": self.group,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], version: int = 0) -> State:
        data = dict(data)
        data["address"] = Address.from_dict(data["address"])
        data["stack"] = [Frame(**f) for f in data.get("stack", [])]
        return cls(**data, version=version)

"""Plain rasa-sdk actions, as a Rasa team would already have them in `actions/actions.py`."""

import asyncio
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher

PRICES = {"cardiology": 120, "pediatrics": 80}


class ActionLookupPrice(Action):
    def name(self) -> str:
        return "action_lookup_price"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[dict]:
        department = tracker.get_slot("department")
        price = PRICES.get(department)
        dispatcher.utter_message(text=f"A {department} visit costs {price} yuan.")
        return [SlotSet("price", price), FollowupAction("action_listen")]


class ActionCheckQuota(Action):
    """Async, answers with a domain response, buttons and a template variable."""

    def name(self) -> str:
        return "action_check_quota"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[dict]:
        await asyncio.sleep(0)
        left = 3 if tracker.latest_message.get("text") == "tomorrow" else 0
        dispatcher.utter_message(
            response="utter_quota",
            buttons=[{"title": "Book", "payload": "/book"}, {"title": "Later", "payload": "/later"}],
            left=left,
        )
        dispatcher.utter_message(response="quota.footer", image="https://example.org/map.png")
        return [SlotSet("quota_left", left), SlotSet("asked_by", tracker.sender_id)]


class ActionSlowLookup(Action):
    def name(self) -> str:
        return "action_slow_lookup"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[dict]:
        await asyncio.sleep(5)
        return []


class ActionBroken(Action):
    def name(self) -> str:
        return "action_broken"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[dict]:
        raise RuntimeError(f"hospital system rejected {tracker.get_slot('phone')}")

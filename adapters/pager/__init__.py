"""The outgoing pager webhook: emergency pages POSTed, signed, to an SMS / phone / pager gateway."""

from adapters.pager.adapter import CHANNEL, PagerWebhookAdapter
from adapters.pager.signature import sign, verify

__all__ = ["CHANNEL", "PagerWebhookAdapter", "sign", "verify"]

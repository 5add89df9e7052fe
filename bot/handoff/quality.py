"""The machine tier of quality review: rules on a staff reply that flag it for a human reviewer.

- too_short: a one-liner to a long question;
- unrelated: the reply shares almost nothing with what the patient asked;
- duplicate: nearly the same text was sent to another patient (copy-paste answers);
- slow: the reply came long after the patient's message.
Text similarity works on character pairs for Chinese and on words for other scripts.
"""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta

from bot.handoff.config import Quality

_CJK = re.compile(r"[\u3400-\u9fff]")
_WORD = re.compile(r"[a-z0-9]+")
_STOP = {"the", "a", "an", "and", "or", "to", "of", "is", "are", "you", "your", "i", "it", "in", "on",
         "for", "be", "this", "that", "with", "please", "thanks", "thank"}


def shingles(text: str) -> set[str]:
    text = text.lower()
    han = "".join(_CJK.findall(text))
    grams = {han[i:i + 2] for i in range(len(han) - 1)}
    grams |= {w for w in _WORD.findall(text) if w not in _STOP}
    return grams


def similarity(a: set[str], b: set[str]) -> float:
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)


def overlap(reply: set[str], question: set[str]) -> float:
    """How much of the question the reply takes up (not symmetric: a long reply may add a lot)."""
    if not question:
        return 1.0
    return len(reply & question) / len(question)


def check_reply(rules: Quality, reply: str, question: str, other_replies: list[str],
                waited: timedelta | None, slow_after: timedelta) -> list[str]:
    reasons = []
    r, q = shingles(reply), shingles(question)
    if len(reply.strip()) < rules.min_reply_chars and len(question.strip()) >= rules.long_question_chars:
        reasons.append("too_short")
    if len(question.strip()) >= rules.long_question_chars and len(reply.strip()) >= rules.min_reply_chars \
            and overlap(r, q) < rules.min_overlap:
        reasons.append("unrelated")
    if len(reply.strip()) >= 20 and any(similarity(r, shingles(o)) >= rules.duplicate_similarity
                                        for o in other_replies):
        reasons.append("duplicate")
    if waited is not None and waited > slow_after:
        reasons.append("slow")
    return reasons


def sampled(ticket_id: str, rate: float) -> bool:
    """A stable random sample: the same ticket is always in or out, whichever worker asks."""
    value = int(hashlib.sha256(ticket_id.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return value < rate

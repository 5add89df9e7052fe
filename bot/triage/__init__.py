"""Deterministic red-flag triage and department routing (see docs/triage.md).

    rules = load_triage("content", "zh-CN")
    result = assess("胸口压着疼出冷汗", rules)
    result.level, result.emergency_numbers, result.reply_key
"""

from bot.triage.engine import Assessment, Match, PatientContext, assess, bench_triage, max_level
from bot.triage.model import LEVELS, TriageRules
from bot.triage.rules import default_content_dir, load_all_triage, load_triage

__all__ = [
    "LEVELS", "Assessment", "Match", "PatientContext", "TriageRules", "assess", "bench_triage",
    "default_content_dir", "load_all_triage", "load_triage", "max_level",
]

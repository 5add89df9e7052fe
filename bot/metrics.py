"""Prometheus metrics. Labels carry channels and outcomes, never patient data."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

INBOUND = Counter("carebot_inbound_total", "Inbound messages by outcome", ["channel", "kind", "outcome"],
                  registry=REGISTRY)
TURN_SECONDS = Histogram("carebot_turn_seconds", "Time from receipt to commit of one message",
                         buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
                         registry=REGISTRY)
OUTBOX = Counter("carebot_outbox_total", "Outbound deliveries by outcome", ["channel", "outcome"],
                 registry=REGISTRY)
TIMERS_FIRED = Counter("carebot_timers_fired_total", "Timers that came due and ran", registry=REGISTRY)
CONFLICTS = Counter("carebot_version_conflicts_total", "Turns re-run after a concurrent update",
                    registry=REGISTRY)
ACTIVE = Gauge("carebot_active_conversations", "Conversations with a message in progress", registry=REGISTRY)
WRITE_RETRIES = Counter("carebot_write_retries_total", "Write batches run again after a deadlock or "
                        "serialization failure", registry=REGISTRY)
WRITE_SPILLS = Counter("carebot_write_spills_total", "SQLite write batches handed to a thread because another "
                       "process held the write lock", registry=REGISTRY)
WRITE_OUTAGES = Counter("carebot_write_outages_total", "Write batches failed because the database was "
                        "unreachable", registry=REGISTRY)

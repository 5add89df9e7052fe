"""Pure-pipeline steps per CPU second (the bench's script, screening memory off where the tree has one;
best of 3): comparable between trees on a busy machine. Works on trees back to 4acc17a. Run from a
tree: `.venv/bin/python scripts/pipeline_cpu.py` (or with this file copied, in an older tree)."""
import asyncio, gc, inspect, time, sys, json
from datetime import datetime, timezone
from bot import bench
from bot.app import load_config, build_pipeline
from bot.settings import Settings
s = Settings.from_env()
config = load_config(s)
engine, pipeline = build_pipeline(config, s.base_locale)
try:
    from bot import safety as safety_module
    from bot.safety import SafetyStage
    safety = next(st for st in pipeline.stages if isinstance(st, SafetyStage))
    if hasattr(safety, "screener") and hasattr(safety.screener, "_remembered"):
        safety.screener._remembered = safety.screener._screen
    if hasattr(safety_module, "_carries_value") and hasattr(safety_module._carries_value, "__wrapped__"):
        safety_module._carries_value = safety_module._carries_value.__wrapped__
except ImportError:
    pass
now = datetime.now(timezone.utc)
M = 8000
is_async = inspect.iscoroutinefunction(pipeline.run)
def run():
    states = {}
    async def go():
        for i in range(M):
            chat = f"p{i % 100}"
            inbound = bench._inbound(chat, bench.SCRIPT[(i // 100) % len(bench.SCRIPT)], i)
            st = states.get(chat) or engine.new_state(inbound)
            r = pipeline.run(st, inbound, now)
            if is_async: r = await r
            states[chat], _ = r
    gc.collect(); t = time.process_time(); asyncio.run(go()); return M / (time.process_time() - t)
run()
print(json.dumps({"cpu_steps_per_s": round(max(run() for _ in range(3)))}))

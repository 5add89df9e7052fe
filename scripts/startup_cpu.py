"""CPU seconds a fresh process spends importing bot.app, loading the config and building the pipeline
(a start-up figure less disturbed by a busy machine than `carebot bench startup`). Run from a tree:
`.venv/bin/python -c 'import sys; sys.path.insert(0, "."); exec(open("scripts/startup_cpu.py").read())'`"""
import time, json, resource
def cpu():
    u = resource.getrusage(resource.RUSAGE_SELF); return u.ru_utime + u.ru_stime
import bot.app as app
from bot.settings import Settings
t1 = cpu()
s = Settings()
cfg = app.load_config(s)
t2 = cpu()
app.build_pipeline(cfg, s.base_locale)
t3 = cpu()
print(json.dumps({"import_cpu": round(t1, 3), "config_cpu": round(t2 - t1, 3), "pipeline_cpu": round(t3 - t2, 3), "total_cpu": round(t3, 3)}))

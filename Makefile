# `make run` and `make test` each do all set-up on a fresh machine.
# the first interpreter that really runs and is new enough (a pyenv shim may exist without one)
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	$$p -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null && { command -v $$p; break; }; done)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: setup run test test-night validate schema bench clean browser

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "carebot needs Python 3.11 or newer (python3.11, python3.12 …)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[all,test]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

# Bytecode for our own modules, written here because the machine may set PYTHONDONTWRITEBYTECODE
# (then every start compiles ~100 modules from source: ~0.2 s). Checked-hash: an edited file is
# seen by its hash, whatever its mtime, and recompiled in memory until the next setup.
setup: $(STAMP)
	@$(BIN)/python -m compileall -q -j0 --invalidation-mode checked-hash bot adapters >/dev/null

run: setup
	$(BIN)/carebot db upgrade
	$(BIN)/carebot run --no-migrate

validate: setup
	$(BIN)/carebot validate

# Browser tests drive the system Chromium (never a downloaded browser); CJK fonts make the
# screenshots of Chinese conversations readable.
browser:
	@if test -x /usr/bin/chromium && dpkg -s fonts-wqy-zenhei >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium fonts-wqy-zenhei; \
	else echo "note: install chromium and fonts-wqy-zenhei (apt) for the browser tests"; fi

test: setup browser
	$(BIN)/carebot validate
	$(BIN)/carebot test tests/conversations
	$(BIN)/python -m pytest -q

# The suite pins the time of day it runs at (10:00 Asia/Shanghai, tests/conftest.py); this runs it at
# 03:00, inside quiet hours and the night shift, to show nothing in it depends on the hour.
test-night: setup browser
	$(BIN)/python -m pytest -q --clock-at 03:00

schema: setup
	$(BIN)/carebot schema -o flows/schema.json

bench: setup
	$(BIN)/carebot bench engine --pure
	$(BIN)/carebot bench engine

clean:
	rm -rf $(VENV) carebot.db carebot.db-* carebot-chat.db* .pytest_cache

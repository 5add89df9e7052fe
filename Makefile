# `make run` and `make test` each do all set-up on a fresh machine.
# the first interpreter that really runs and is new enough (a pyenv shim may exist without one)
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	$$p -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null && { command -v $$p; break; }; done)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: setup run test validate schema bench clean

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "carebot needs Python 3.11 or newer (python3.11, python3.12 …)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[all,test]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

setup: $(STAMP)

run: setup
	$(BIN)/carebot db upgrade
	$(BIN)/carebot run --no-migrate

validate: setup
	$(BIN)/carebot validate

test: setup
	$(BIN)/carebot validate
	$(BIN)/carebot test tests/conversations
	$(BIN)/python -m pytest -q

schema: setup
	$(BIN)/carebot schema -o flows/schema.json

bench: setup
	$(BIN)/carebot bench engine --pure
	$(BIN)/carebot bench engine

clean:
	rm -rf $(VENV) carebot.db carebot.db-* carebot-chat.db* .pytest_cache

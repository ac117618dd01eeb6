# Version Contract Portal: `make run` serves the demo, `make test` runs the whole suite.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
GATEWAY_PORT ?= 8001
# The demo gateway's key: fixed demo data, printed by seed_demo (contracts/gateway/demo.py).
DEMO_GATEWAY_KEY := vcpgw_demogateway00000000000000000000000000
WEBHOOK_PORT ?= 8002
# Links in demo mail follow the address the portal is served on.
SITE_URL ?= http://$(HOST):$(PORT)
export SITE_URL
export DEMO_WEBHOOK_PORT = $(WEBHOOK_PORT)

.PHONY: run test bench lint install services-check clean

$(STAMP): pyproject.toml gateway/pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is needed ($(PYTHON) not found)"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]' -e ./gateway
	@touch $(STAMP)

install: $(STAMP)

# The whole product on the embedded default: SQLite, a filesystem Celery broker, the local outbox.
run: $(STAMP)
	DEBUG=1 $(PY) manage.py migrate --noinput -v0
	DEBUG=1 $(PY) manage.py collectstatic --noinput -v0
	@echo "Celery worker + beat on the filesystem broker (log: var/celery.log)"
	@echo "Demo gateway: http://$(HOST):$(GATEWAY_PORT)/v1/chat/completions (log: var/gateway.log)"
	@echo "Demo eval runner claiming refresh runs from the API (log: var/eval-runner.log)"
	@DEBUG=1 $(PY) manage.py demo_webhook_receiver --port $(WEBHOOK_PORT) >var/webhook-receiver.out 2>&1 & \
	  HOOK_PID=$$!; trap "kill $$HOOK_PID 2>/dev/null" EXIT INT TERM; \
	  DEBUG=1 $(PY) manage.py seed_demo || exit 1; \
	  DEBUG=1 $(VENV)/bin/celery -A portal worker -B --pool=solo --loglevel=INFO >var/celery.log 2>&1 & \
	  CELERY_PID=$$!; \
	  $(PY) -m vcp_gateway.demo --portal http://$(HOST):$(PORT) --gateway-key $(DEMO_GATEWAY_KEY) \
	    --host $(HOST) --port $(GATEWAY_PORT) --key-file var/gateway/receipt-key.pem \
	    --cache var/gateway/pin-map.json >var/gateway.log 2>&1 & \
	  GATEWAY_PID=$$!; \
	  DEBUG=1 $(PY) manage.py eval_runner --url http://$(HOST):$(PORT) >var/eval-runner.log 2>&1 & \
	  RUNNER_PID=$$!; trap "kill $$CELERY_PID $$GATEWAY_PID $$RUNNER_PID $$HOOK_PID 2>/dev/null" EXIT INT TERM; \
	  echo "Demo webhook receiver: http://127.0.0.1:$(WEBHOOK_PORT)/ (deliveries logged in var/webhook-receiver.log)"; \
	  echo "Portal: http://$(HOST):$(PORT)/  (sign in with a login above; mail: http://$(HOST):$(PORT)/outbox/)"; \
	  DEBUG=1 $(PY) manage.py runserver $(HOST):$(PORT)

# Browser tests drive Debian's Chromium; install it when missing and we are root.
chromium:
	@if ! command -v chromium >/dev/null; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium poppler-utils >/dev/null; \
	  else echo "chromium is missing: sudo apt-get install chromium (browser tests will fail)"; fi; fi

test: $(STAMP) chromium
	$(PY) -m pytest $(PYTEST_ARGS)

# The resolve benchmark drives gunicorn with wrk (Debian's package); installed when missing and we are root.
bench: $(STAMP)
	@if ! command -v wrk >/dev/null && [ "$$(id -u)" = 0 ]; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; fi
	$(PY) -m pytest tests/bench -s -p no:cacheprovider $(PYTEST_ARGS)

# Lint is a gate (CI runs it first): ruff's rules and format, and the layer contract.
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

clean:
	rm -rf var/portal.sqlite3* var/cache var/celery var/outbox

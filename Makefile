# Developer entry points. Everything runs from the repo-local virtualenv (.venv) and a local
# Kafka broker started from Maven Central jars (tools/kafka/kafka.sh; needs java + mvn).
# Set STREAMPROC_KAFKA=host:port to use an existing broker instead.
SHELL := /bin/bash
.DEFAULT_GOAL := test

VENV := .venv
PY := $(VENV)/bin/python
KAFKA := tools/kafka/kafka.sh
PYTEST_ARGS ?=
BENCH_ARGS ?=

.PHONY: venv kafka-up kafka-down kafka-status test test-fast lint schemas run bench clean

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV) && $(VENV)/bin/pip install -q --upgrade pip && $(VENV)/bin/pip install -q -e '.[test]' && touch $(VENV)/.installed

venv: $(VENV)/.installed

kafka-up: venv
	$(KAFKA) up

kafka-down:
	$(KAFKA) down

kafka-status:
	$(KAFKA) status

# The broker-free tests first (a failure there stops before any broker starts), then the ones on
# real Kafka, on LIVE_WORKERS pytest-xdist processes (they mostly wait on brokers and processes,
# not on the CPU): each starts (and stops) its own broker on 127.0.0.1:19192, 19194, ...; a file's
# tests stay on one process (tests/conftest.py). LIVE_WORKERS=0 runs them in this process. Last,
# alone on the machine, tests/cluster on a three-node cluster (19692-19697,
# tests/cluster/conftest.py): restarting brokers under load is their point, not the box's.
LIVE_WORKERS ?= 2
test: venv
	$(PY) -m pytest -q -m "not kafka and not slow" $(PYTEST_ARGS)
	$(PY) -m pytest -q -m "(kafka or slow) and not cluster" -n $(LIVE_WORKERS) --dist loadgroup $(PYTEST_ARGS)
	$(PY) -m pytest -q -m cluster $(PYTEST_ARGS)

# The edit loop: unit tests only, no broker, no child processes.
test-fast: venv
	$(PY) -m pytest -q -m "not kafka and not slow" $(PYTEST_ARGS)

lint: venv
	$(VENV)/bin/ruff check streamproc tests bench
	$(VENV)/bin/ruff format --check streamproc tests bench
	$(VENV)/bin/mypy streamproc bench
	$(VENV)/bin/lint-imports

schemas: venv
	$(VENV)/bin/streamproc schemas --out schemas

# Helm chart: lint, render and validate offline (kubeconform); not part of `make test`.
.PHONY: helm-check
helm-check:
	tools/helm-check.sh

# Container image (Dockerfile) with docker, podman or buildah; skipped with a message where none can build.
.PHONY: image
image:
	tools/image.sh $(IMAGE_TAG)

# Broker + processor + sender(s) + API in the foreground; Ctrl-C stops all of it.
run: venv
	tools/run.sh

# End to end, trigger -> worker(s) -> sender -> vendor fakes (see docs/benchmarks.md): under 15 minutes;
# bench-quick: the same with small sizes, under 2. Figures: bench/results.json (beside the previous run's).
.PHONY: bench-quick
bench: venv
	tools/run.sh $(PY) -m bench $(BENCH_ARGS)

bench-quick: venv
	tools/run.sh $(PY) -m bench --quick $(BENCH_ARGS)

# Stops every broker whose state lives under .run (e.g. a test broker left behind by a killed
# test session, or one started with another KAFKA_RUN_DIR=.run/...) before deleting it.
clean: kafka-down
	@shopt -s nullglob; for d in .run/*/; do \
	  if [[ -f $$d/server.properties ]]; then KAFKA_RUN_DIR=$$d $(KAFKA) down || exit 1; fi; \
	done
	rm -rf .run

# peerbeam: `make run` runs the product locally, `make test` runs the tests.
# Both set up everything they need on a fresh machine (a .venv, and the
# Debian packages the tests drive: Chromium, coturn, zbar).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
STAGE ?= dev
SYSTEM_PACKAGES := chromium coturn libzbar0

.PHONY: install system-deps run test bench lint clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

# The end-to-end tests drive Debian's Chromium and coturn; install them when missing.
system-deps:
	@missing=""; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v turnserver >/dev/null || missing="$$missing coturn"; \
	ldconfig -p | grep -q libzbar.so || missing="$$missing libzbar0"; \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	fi

run: install
	$(BIN)/peerbeam serve --host $(HOST) --port $(PORT) $(if $(TLS),--tls)

test: install system-deps
	$(BIN)/python -m pytest -q

# The property-based fuzzers of tests/test_fuzz_*.py with many more examples than `make test`
# runs (HYPOTHESIS_PROFILE=fuzz: 3000 per property; failures are kept in .hypothesis/).
.PHONY: fuzz
fuzz: install
	HYPOTHESIS_PROFILE=fuzz $(BIN)/python -m pytest -q tests/test_fuzz_handlers.py tests/test_fuzz_server.py

# Benchmarks run side by side with their baselines and rewrite docs/benchmarks.md.
bench: install system-deps
	$(BIN)/python -m benchmarks.cli_transfer
	$(BIN)/python -m benchmarks.signaling_load
	$(BIN)/python -m benchmarks.handler_cost
	$(BIN)/python -m benchmarks.swarm
	$(BIN)/python -m benchmarks.browser_transfer
	$(BIN)/python -m benchmarks.attacks
	$(BIN)/python -m benchmarks.report

lint: install
	$(BIN)/ruff check app.py chalicelib peerbeam tests loadtests

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache dist

# AWS (docs/deploy.md). `package` needs no AWS access; `deploy`/`destroy` use your
# AWS credentials (AWS_PROFILE / AWS_REGION, or REGION=… PROFILE=… here).
.PHONY: package deploy destroy
DEPLOY_FLAGS = --stage $(STAGE) $(if $(REGION),--region $(REGION)) $(if $(PROFILE),--profile $(PROFILE))

package: install
	$(BIN)/python -m peerbeam.deploy package $(DEPLOY_FLAGS)
	$(BIN)/cfn-lint dist/$(STAGE)/sam.json

deploy: install
	$(BIN)/python -m peerbeam.deploy deploy $(DEPLOY_FLAGS)

destroy: install
	$(BIN)/python -m peerbeam.deploy destroy $(DEPLOY_FLAGS)

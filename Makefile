# peerbeam: `make run` runs the product locally, `make test` runs the tests,
# `make lint` runs the checkers (ruff, mypy, TypeScript's over the web client).
# Each sets up what it needs on a fresh machine (a .venv, node_modules with the
# pinned TypeScript and puppeteer-core, and the Debian packages: Chromium, Firefox ESR,
# coturn, zbar, Node.js).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
STAGE ?= dev
PYTHON_SOURCES := app.py chalicelib peerbeam tests loadtests benchmarks
NODE_STAMP := node_modules/.installed

.PHONY: install node-install system-deps run test bench bench-soak bench-large bench-long lint clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

# The JavaScript tools pinned in package-lock.json; reinstalled only when it changes.
# puppeteer-core drives Debian's Firefox ESR in the tests (tests/fixtures/firefox.py): it
# never downloads a browser.
node-install: $(NODE_STAMP)

$(NODE_STAMP): package.json package-lock.json | system-deps
	PUPPETEER_SKIP_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The end-to-end tests drive Debian's Chromium, Firefox ESR (through Node.js) and coturn
# and build NAT routers from network namespaces (iproute2, iptables); the lint runs
# Node.js. Install them when missing (npm only with Debian's nodejs: other builds bundle it).
system-deps:
	@missing=""; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v firefox-esr >/dev/null || missing="$$missing firefox-esr"; \
	command -v turnserver >/dev/null || missing="$$missing coturn"; \
	command -v ip >/dev/null || missing="$$missing iproute2"; \
	[ -x /usr/sbin/iptables-restore ] || missing="$$missing iptables"; \
	ldconfig -p | grep -q libzbar.so || missing="$$missing libzbar0"; \
	command -v node >/dev/null || missing="$$missing nodejs"; \
	command -v npm >/dev/null || missing="$$missing npm"; \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	fi

run: install
	$(BIN)/peerbeam serve --host $(HOST) --port $(PORT) $(if $(TLS),--tls)

test: install system-deps node-install
	$(BIN)/python -m pytest -q --durations=25

# The property-based fuzzers of tests/test_fuzz_*.py with many more examples than `make test`
# runs (HYPOTHESIS_PROFILE=fuzz: 3000 per property; failures are kept in .hypothesis/).
.PHONY: fuzz
fuzz: install
	HYPOTHESIS_PROFILE=fuzz $(BIN)/python -m pytest -q tests/test_fuzz_handlers.py tests/test_fuzz_server.py

# Benchmarks run side by side with their baselines and rewrite docs/benchmarks.md.
bench: install system-deps node-install
	$(BIN)/python -m benchmarks.cli_transfer
	$(BIN)/python -m benchmarks.signaling_load
	$(BIN)/python -m benchmarks.handler_cost
	$(BIN)/python -m benchmarks.swarm
	$(BIN)/python -m benchmarks.browser_transfer
	$(BIN)/python -m benchmarks.digest_cost
	$(BIN)/python -m benchmarks.attacks
	$(BIN)/python -m benchmarks.report

# Transfers that last 15 minutes with the real timers, on loopback and across an emulated
# rate-limited link (root; netem-lite builds with gcc and needs iptables). Not part of `bench`.
bench-soak: install system-deps
	@command -v iptables-legacy >/dev/null || { SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends iptables gcc libc6-dev; }
	$(BIN)/python -m benchmarks.soak
	$(BIN)/python -m benchmarks.report

# Large files (docs/benchmarks.md, "Large files"): 8 GiB browser runs, 20 GiB CLI → CLI.
# About an hour and ≥ 45 GB free; not part of `make bench`.
bench-large: install system-deps node-install
	$(BIN)/python -m benchmarks.large_transfer
	$(BIN)/python -m benchmarks.report

# Throughput across an emulated wide-area link (docs/benchmarks.md, "Long-haul links"): RTT
# 0-200 ms, random loss at 60 ms; a TCP stream, bare aiortc and Chromium channels x1 and xN,
# the CLI and the web client side by side (root; netem-lite as for bench-soak, set NETEM_LITE
# to its directory). Not part of `bench`: about an hour.
bench-long: install system-deps
	@command -v iptables-legacy >/dev/null || { SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends iptables gcc libc6-dev; }
	$(BIN)/python -m benchmarks.long_haul
	$(BIN)/python -m benchmarks.report

lint: install node-install
	$(BIN)/ruff check $(PYTHON_SOURCES)
	$(BIN)/mypy
	node_modules/.bin/tsc -p jsconfig.json
	node_modules/.bin/tsc -p jsconfig.worker.json

clean:
	rm -rf $(VENV) node_modules *.egg-info .pytest_cache .mypy_cache dist

# AWS (docs/deploy.md). `package` needs no AWS access; `deploy`/`destroy` use your
# AWS credentials (AWS_PROFILE / AWS_REGION, or REGION=… PROFILE=… here).
.PHONY: package deploy destroy
DEPLOY_FLAGS = --stage $(STAGE) $(if $(REGION),--region $(REGION)) $(if $(PROFILE),--profile $(PROFILE))

package: install
	$(BIN)/python -m peerbeam.deploy package $(DEPLOY_FLAGS)
	$(BIN)/cfn-lint dist/$(STAGE)/sam.json

# TURN=1 adds a coturn relay to the stage, TURN=0 removes it; unset keeps what the stage has.
deploy: install
	$(BIN)/python -m peerbeam.deploy deploy $(DEPLOY_FLAGS) $(if $(filter 1,$(TURN)),--turn-relay)$(if $(filter 0,$(TURN)),--no-turn-relay)

destroy: install
	$(BIN)/python -m peerbeam.deploy destroy $(DEPLOY_FLAGS)

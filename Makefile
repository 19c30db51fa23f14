# netcheck: `make demo` runs the main job on the built-in lab; `make test` runs the tests.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
NETCHECK := $(VENV)/bin/netcheck
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
OUT ?= out

.PHONY: install system-deps kube-bins image demo test fuzz check bench bench-deps dashboards lab-down clean

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

install: system-deps $(VENV)/.installed kube-bins

# Debian packages the lab and the tests use (iproute2, iptables, setpriv, prometheus and
# promtool, Java 17 with Maven for the lab's Cassandra, etcd for the lab's Kubernetes API
# servers, debootstrap and buildah for the agent image, chromium for the HTML report's test).
system-deps:
	@missing=""; \
	for t in ip:iproute2 iptables:iptables setpriv:util-linux promtool:prometheus \
	         java:openjdk-17-jre-headless javac:openjdk-17-jdk-headless mvn:maven \
	         etcd:etcd-server debootstrap:debootstrap buildah:buildah chromium:chromium; do \
	  command -v $${t%%:*} >/dev/null || missing="$$missing $${t##*:}"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

# the lab's Kubernetes control plane (kube-apiserver, -controller-manager, -scheduler) and its
# NetworkPolicy enforcer (kube-network-policies), built once from the Go module proxy into
# ~/.cache/netcheck (pinned: netcheck/lab/controlplane, netcheck/lab/netpolicy)
kube-bins: $(VENV)/.installed
	@$(PY) -c "from netcheck.lab import kubebuild as k; k.built() or print('building', k.VERSION, 'once (8 to 12 min cold)')"
	@$(PY) -c "from netcheck.lab import kubebuild as k; print('kubernetes binaries:', k.build(k.bin_dir() + '.log'))"
	@$(PY) -c "from netcheck.lab import kubebuild as k; print('networkpolicy enforcer:', k.build_netpol(k.netpol_dir() + '.log'))"

# the agent image from probes/Dockerfile, built with buildah on a Debian base made by
# debootstrap (cached), tagged as the manifests name it; nothing to do when it is current
image: install
	@mkdir -p $(OUT)
	@$(SUDO) $(NETCHECK) lab image --log $(OUT)/image.log

demo: install
	@mkdir -p $(OUT)
	$(SUDO) $(NETCHECK) lab up
	$(SUDO) $(NETCHECK) lab inventory > $(OUT)/lab-inventory.yaml
	$(SUDO) $(NETCHECK) lab fault add drop --src CP_EAST --dst DP_WEST --port 7001
	-$(SUDO) $(NETCHECK) run --inventory $(OUT)/lab-inventory.yaml --timeout 2 \
	  --json-file $(OUT)/demo.json --junit $(OUT)/demo.junit.xml --prom-file $(OUT)/demo.prom; \
	  echo "netcheck run exit code: $$? (1 = failures found, as expected with the fault)"
	$(SUDO) $(NETCHECK) lab down

test: install image
	$(SUDO) $(PY) -m pytest -q -p no:cacheprovider --durations=25

# the property tests with 10,000 generated inputs each (make test runs 500)
fuzz: install
	NETCHECK_FUZZ=1 $(PY) -m pytest -q -p no:cacheprovider -m fuzz tests/test_fuzz.py

check: install
	$(VENV)/bin/ruff format --check netcheck tests bench reports
	$(VENV)/bin/ruff check netcheck tests bench reports
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

# the Grafana dashboards' JSON from their builder (tests/test_serve.py checks they match)
dashboards: $(VENV)/.installed
	$(PY) reports/grafana/dashboards.py

bench: install bench-deps
	$(SUDO) $(PY) bench/run_bench.py --write BENCHMARKS.md

# what only the benchmarks use: Debian's blackbox_exporter beside the agent (section p) and
# ab (apache2-utils) to drive it as hard as it goes
bench-deps:
	@missing=""; \
	for t in prometheus-blackbox-exporter:prometheus-blackbox-exporter ab:apache2-utils; do \
	  command -v $${t%%:*} >/dev/null || missing="$$missing $${t##*:}"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

lab-down:
	$(SUDO) $(NETCHECK) lab down

clean: lab-down
	rm -rf $(VENV) $(OUT) *.egg-info

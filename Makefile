# Two set-up commands for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SYSTEM_STAMP := $(VENV)/.system-deps
# offscreen rendering (terrain preview, videos) uses EGL with Mesa's software rasterizer
APT_PACKAGES := libegl1 libegl-mesa0 libgl1-mesa-dri

.PHONY: demo test install bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# torch is pinned to 2.13.0, the CPU build these machines carry; installing it first keeps
# the other packages from asking for another build
$(SYSTEM_STAMP): | $(PY)
	@if ldconfig -p | grep -q 'libEGL.so.1 ' && ls /usr/lib/*/dri/swrast_dri.so >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing system libraries: $(APT_PACKAGES)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PACKAGES); \
	else \
		echo "note: offscreen rendering needs $(APT_PACKAGES) (apt-get install as root); tests that render will skip"; \
	fi
	touch $@

$(STAMP): $(PY) pyproject.toml | $(SYSTEM_STAMP)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "torch==2.13.0"
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

DEMO_MINUTES ?= 4
DEMO_RUN := runs/demo-$(shell date +%Y%m%d-%H%M%S)

# trains the default quadruped for a few minutes, evaluates it, and records a short rollout of it
demo: $(STAMP)
	$(VENV)/bin/ogi robots
	$(VENV)/bin/ogi train --robot go2 --task walk --minutes $(DEMO_MINUTES) --run-dir $(DEMO_RUN)
	$(VENV)/bin/ogi eval $(DEMO_RUN) --num-envs 16 --seconds 10
	$(VENV)/bin/ogi rollout --policy $(DEMO_RUN) --num-envs 4 --seconds 10 --save $(DEMO_RUN)/rollout.safetensors
	@echo "demo run: $(DEMO_RUN) (summary.json, checkpoints/, tb/, rollout.safetensors)"

test: $(STAMP)
	$(PY) -m pytest tests

bench: $(STAMP)
	$(PY) benchmarks/env_throughput.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis

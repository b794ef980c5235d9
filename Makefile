# Two set-up commands for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SYSTEM_STAMP := $(VENV)/.system-deps
# offscreen rendering (terrain preview, videos) uses EGL with Mesa's software rasterizer; the web viewer's
# browser test drives Debian's Chromium headless with software WebGL
APT_PACKAGES := libegl1 libegl-mesa0 libgl1-mesa-dri chromium

.PHONY: demo test install bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# installs only what is missing (as root, with apt); without root it says what the tests that need it will skip
$(SYSTEM_STAMP): | $(PY)
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing system libraries:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	else \
		echo "note: missing system packages:$$missing (apt-get install as root); tests that render or open a browser will skip"; \
	fi
	touch $@

# torch is pinned to 2.13.0, the CPU build these machines carry; installing it first keeps
# the other packages from asking for another build
$(STAMP): $(PY) pyproject.toml | $(SYSTEM_STAMP)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "torch==2.13.0"
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

DEMO_MINUTES ?= 15
DEMO_RUN := runs/demo-$(shell date +%Y%m%d-%H%M%S)

# trains the default quadruped until it walks in every direction (judged every minute on the 1 kHz model; at most
# DEMO_MINUTES), judges it per command family, records a short rollout of it, checks that the recording replays
# bit for bit, plots it, exports the policy for deployment and walks the export on the simulated 1 kHz robot
demo: $(STAMP)
	$(VENV)/bin/ogi robots
	$(VENV)/bin/ogi train --robot go2 --task walk --until-walks --minutes $(DEMO_MINUTES) --run-dir $(DEMO_RUN)
	$(VENV)/bin/ogi eval $(DEMO_RUN) --families --num-envs 40 --seconds 20
	$(VENV)/bin/ogi rollout --policy $(DEMO_RUN) --num-envs 4 --seconds 10 --record $(DEMO_RUN)/rollout.mcap
	$(VENV)/bin/ogi replay $(DEMO_RUN)/rollout.mcap --check
	$(VENV)/bin/ogi plot $(DEMO_RUN)/rollout.mcap --out $(DEMO_RUN)/plots
	$(VENV)/bin/ogi export $(DEMO_RUN) --out $(DEMO_RUN)/artifact
	$(VENV)/bin/ogi deploy $(DEMO_RUN)/artifact --bridge sim --seconds 8 --command-vx 0.4 --command-yaw 0.5
	@echo "demo run: $(DEMO_RUN) (summary.json, checkpoints/, tb/, rollout.mcap, plots/, artifact/)"
	@echo "watch it: $(VENV)/bin/ogi replay $(DEMO_RUN)/rollout.mcap   (or --video $(DEMO_RUN)/rollout.mp4)"

test: $(STAMP)
	$(VENV)/bin/ruff check ogi tests benchmarks
	$(VENV)/bin/ruff format --check ogi tests benchmarks
	$(PY) -m pytest tests

bench: $(STAMP)
	$(PY) benchmarks/env_throughput.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis

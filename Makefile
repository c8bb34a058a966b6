# Quick start:  make run   (installs what the server needs, then serves it on SQLite)
#               make test  (installs what the tests need, then lint, types and the whole suite)
.PHONY: run test check lint format typecheck pytest coverage bench

PYTEST_ARGS ?= -n auto --dist loadfile

run:
	scripts/bootstrap
	.venv/bin/bigfootlive serve

test:
	scripts/bootstrap --test
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
	scripts/bootstrap --test
	.venv/bin/pytest --cov --cov-report=term-missing --cov-report=html $(PYTEST_ARGS)
	@echo "HTML report: htmlcov/index.html"

bench:
	scripts/bootstrap --test
	.venv/bin/python -m bench.run_all

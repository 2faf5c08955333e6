# `make run`: the server on :5000 with embedded defaults. `make test`: the test suite on MariaDB.
TEST_DATABASE_URL ?= mysql://root@127.0.0.1:3306/spotbackend
VENV ?= .venv

.PHONY: run test bench check

run:
	scripts/run

test:
	scripts/bootstrap
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} $(VENV)/bin/pytest $(PYTEST_ARGS)

check:
	scripts/bootstrap
	$(VENV)/bin/python manage.py makemigrations --check --dry-run

bench:
	scripts/bootstrap
	$(VENV)/bin/python bench/run.py

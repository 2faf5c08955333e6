# `make run`: the server on $PORT (default 5000) with embedded defaults. `make test`: the test suite on
# MariaDB ($TEST_DATABASE_URL) and Redis ($TEST_REDIS_URL), started privately when they do not answer.
VENV ?= .venv

.PHONY: run test bench check

run:
	scripts/run

test:
	scripts/test

check:
	scripts/bootstrap --dev
	DEBUG=true $(VENV)/bin/python manage.py makemigrations --check --dry-run

bench:
	scripts/bootstrap
	$(VENV)/bin/python bench/run.py

# `make run`: the server on :5000 with embedded defaults. `make test`: the test suite on MariaDB.
# `make bench`: load benchmark against the empty-view ceiling (docs/PERFORMANCE.md).
TEST_DATABASE_URL ?= mysql://root@127.0.0.1:3306/spotbackend
VENV ?= .venv

.PHONY: run test bench bench-inprocess check

run:
	scripts/run

test:
	scripts/bootstrap
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} $(VENV)/bin/pytest $(PYTEST_ARGS)

check:
	scripts/bootstrap
	$(VENV)/bin/python manage.py makemigrations --check --dry-run

# The load benchmark (gunicorn + Celery on MariaDB and Redis beside the empty-view ceiling), then the
# background jobs' timings when bench/jobs.py exists: docs/PERFORMANCE.md. BENCH_ARGS=--quick for a smoke run.
bench:
	scripts/bootstrap
	$(VENV)/bin/python bench/load.py $(BENCH_ARGS)
	@if [ -f bench/jobs.py ]; then $(VENV)/bin/python bench/jobs.py; else echo "bench/jobs.py not present: background jobs not timed"; fi

# Per-call latency and query counts in-process (no HTTP): where a call's time goes.
bench-inprocess:
	scripts/bootstrap
	$(VENV)/bin/python bench/run.py

# `make run`: the server on $PORT (default 5000) with embedded defaults. `make test`: the test suite on
# MariaDB ($TEST_DATABASE_URL) and Redis ($TEST_REDIS_URL), started privately when they do not answer.
# `make bench`: load benchmark against the empty-view ceiling (docs/PERFORMANCE.md).
VENV ?= .venv

.PHONY: run test bench bench-inprocess check

run:
	scripts/run

test:
	scripts/test

check:
	scripts/bootstrap --dev
	DEBUG=true $(VENV)/bin/python manage.py makemigrations --check --dry-run

# The load benchmark (gunicorn + Celery on MariaDB and Redis beside the empty-view ceiling), then the
# background jobs' timings when bench/jobs.py exists: docs/PERFORMANCE.md. BENCH_ARGS=--quick for a smoke run.
bench:
	scripts/bootstrap
	$(VENV)/bin/python bench/load.py $(BENCH_ARGS)
	@if [ -f bench/jobs.py ]; then $(VENV)/bin/python bench/jobs.py; else echo "bench/jobs.py not present: background jobs not timed"; fi

# Per-call latency and query counts in-process (no HTTP): where a call's time goes; then what a
# termination notice costs (statements, commits, CPU, time under the agent lock).
bench-inprocess:
	scripts/bootstrap
	$(VENV)/bin/python bench/run.py
	$(VENV)/bin/python bench/notice.py

# `make run`: the server on $PORT (default 5000) with embedded defaults. `make test`: the test suite on
# MariaDB ($TEST_DATABASE_URL) and Redis ($TEST_REDIS_URL), started privately when they do not answer.
# `make bench`: load benchmark against the empty-view ceiling, background jobs, idle cost (docs/PERFORMANCE.md).
VENV ?= .venv

comma := ,
.PHONY: run test bench bench-inprocess bench-instructions check check-alerts

run:
	scripts/run

test:
	scripts/test

check:
	scripts/bootstrap --dev
	DEBUG=true $(VENV)/bin/python manage.py makemigrations --check --dry-run

# The Prometheus alert rules and scrape example (deploy/prometheus/): syntax, then the rules' unit tests.
# promtool comes with Debian's `prometheus` package (.ci/run installs it).
check-alerts:
	promtool check rules deploy/prometheus/alerts.yml
	promtool test rules deploy/prometheus/alerts_test.yml
	promtool check config --syntax-only deploy/prometheus/prometheus.yml

# The load benchmark (gunicorn + Celery on MariaDB and Redis beside the empty-view ceiling), then the
# background jobs' timings, then the idle cost (CPU of web, worker and beat with 10,000 agents and no
# traffic): docs/PERFORMANCE.md. BENCH_ARGS=--quick for a smoke run of the load benchmark,
# BENCH_ARGS=--via-nginx to load both targets through nginx (deploy/nginx/; docs/OPERATIONS.md).
bench:
	scripts/bootstrap
	$(VENV)/bin/python bench/load.py $(BENCH_ARGS)
	$(VENV)/bin/python bench/jobs.py
	$(VENV)/bin/python bench/idle.py

# Per-call latency and query counts in-process (no HTTP): where a call's time goes; then what a
# termination notice costs (statements, commits, CPU, time under the agent lock); then what one agent
# costs each component (CPU, SQL, Redis; docs/SCALING.md).
bench-inprocess:
	scripts/bootstrap
	$(VENV)/bin/python bench/run.py
	$(VENV)/bin/python bench/notice.py
	$(VENV)/bin/python bench/costs.py

# Instructions per agent call, server beside the empty-view ceiling, under valgrind's callgrind: a count
# the machine's load does not move, for before/after comparisons and the ablation table
# (docs/PERFORMANCE.md). ABLATE=name,... switches mechanisms off (bench/ablation.py); REDIS_DOWN=1 runs
# the server with Redis unreachable; FLOOR=1 adds the floor (bench/ceiling/floor.py: the empty view plus
# what the rules require). Needs valgrind.
bench-instructions:
	scripts/bootstrap
	$(VENV)/bin/python bench/instructions.py $(if $(ABLATE),--targets server --ablate $(ABLATE)) $(if $(REDIS_DOWN),--redis-down) $(if $(FLOOR),--targets server$(comma)floor$(comma)floor-ops$(comma)ceiling)

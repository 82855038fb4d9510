# Every target sets up what it needs (a .venv with the project installed) first.
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8000
# make bench: the services the benchmarks run against (README: "Benchmarks").
BENCH_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/collab_bench
BENCH_REDIS_URL ?= redis://127.0.0.1:6379/5
BENCH_OUT ?= .bench
BENCH_CHURN_SECONDS ?= 1800# DESIGN section 9: 30 minutes of reconnect churn
BENCH_ENV = DATABASE_URL=$(BENCH_DATABASE_URL) REDIS_URL=$(BENCH_REDIS_URL) DJANGO_SECRET_KEY=bench \
	DJANGO_HTTPS=0 REALTIME_KEY_PREFIX=bench:
BENCH = $(BENCH_ENV) $(PY) manage.py loadtest

# make reliability: where the full-scale fault figures are appended (docs/reliability.md).
RELIABILITY_RESULTS ?= reliability-results.jsonl
# make fuzz: seconds per harness (the nightly hour each); corpora and crashes under FUZZ_OUT.
FUZZ_SECONDS ?= 3600
FUZZ_OUT ?= .fuzz

.PHONY: run test lint format bench reliability fuzz services install

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

install: $(VENV)/.installed

# The embedded demo: SQLite, in-memory channel layer, one Daphne process, no other service.
run: install
	@if [ -n "$$DATABASE_URL" ]; then echo "make run is the embedded demo: unset DATABASE_URL (see README for production)"; exit 1; fi
	DJANGO_DEBUG=1 $(PY) manage.py migrate --noinput -v 0
	@DJANGO_DEBUG=1 DJANGO_SUPERUSER_PASSWORD=demo $(PY) manage.py createsuperuser --noinput \
		--username demo --email demo@example.com >/dev/null 2>&1 || true
	@echo "Serving on http://localhost:$(PORT)/  (admin: http://localhost:$(PORT)/admin/ as demo / demo)"
	DJANGO_DEBUG=1 DJANGO_WS_ALLOWED_ORIGINS=http://localhost:$(PORT),http://127.0.0.1:$(PORT) \
		$(VENV)/bin/daphne -b 127.0.0.1 -p $(PORT) config.asgi:application

services:
	bash .ci/services

# The whole suite on the real services: unit, integration, system (two Daphne workers).
test: services install
	$(PY) -m pytest

# RELIABILITY.md at full scale (docs/reliability.md): the fault tests at L-nominal's sizes, with
# its timing bounds asserted and their figures recorded; then the table of what was recorded.
reliability: services install
	RELIABILITY_SCALE=full RELIABILITY_RESULTS=$(abspath $(RELIABILITY_RESULTS)) \
		$(PY) -m pytest tests/system/faults tests/system/reliability -m "system or full_scale" -q --timeout 3600
	$(PY) -m tests.system.faults.summarize $(RELIABILITY_RESULTS)

# RELIABILITY.md P9, the nightly job: each atheris harness of tests/fuzz/ (envelope, ot, merge)
# for FUZZ_SECONDS, no services needed. Exits non-zero on any crash (README: "Fuzzing").
fuzz: install
	$(PY) -m tests.fuzz --seconds $(FUZZ_SECONDS) --out $(FUZZ_OUT)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: services install
	$(PY) -m pip install -q -e '.[test,bench]'
	psql -h 127.0.0.1 -U postgres -tc "SELECT 1 FROM pg_database WHERE datname='collab_bench'" | grep -q 1 \
		|| psql -h 127.0.0.1 -U postgres -c "CREATE DATABASE collab_bench" >/dev/null
	$(BENCH_ENV) $(PY) manage.py migrate --noinput -v 0
	@mkdir -p $(BENCH_OUT)
	$(BENCH) hold --spawn 2 --procs 4 --connections 20000 --rooms 2000 --hold 30 --connect-rate 200 \
		> $(BENCH_OUT)/hold.json
	$(BENCH) fanout --spawn 2 --rooms 100 --members 10 --rate 200 --duration 20 --baseline both \
		> $(BENCH_OUT)/fanout-200.json
	$(BENCH) fanout --spawn 2 --rooms 100 --members 10 --rate 1000 --duration 20 --baseline both \
		> $(BENCH_OUT)/fanout-1000.json
	$(BENCH) big-room --spawn 2 --members 1000 --rate 10 --duration 20 --baseline both \
		> $(BENCH_OUT)/big-room.json
	$(BENCH) ot-hot --spawn 2 --editors 20 --duration 20 > $(BENCH_OUT)/ot-hot.json
	$(BENCH) ot-many --spawn 2 --documents 100 --duration 20 > $(BENCH_OUT)/ot-many.json
	$(BENCH) join --spawn 2 --size-kb 100 --joins 200 > $(BENCH_OUT)/join.json
	$(BENCH) comments --spawn 2 --threads 20 --users 10 --rate 100 --duration 20 \
		> $(BENCH_OUT)/comments.json
	$(BENCH) forms --spawn 2 --forms 10 --respondents 200 --dashboards 2 --rate 100 \
		> $(BENCH_OUT)/forms.json
	$(BENCH) churn --spawn 2 --clients 200 --duration $(BENCH_CHURN_SECONDS) --cut-min 10 \
		--cut-max 30 --sample-interval 10 > $(BENCH_OUT)/churn.json
	$(PY) -m monitoring.loadtest.table $(BENCH_OUT)/*.json

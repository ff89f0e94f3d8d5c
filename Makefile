# The two commands: `make demo` runs the main job, `make test` runs the tests.
# Everything installs itself from nothing: venv, packages, Kafka jars (Maven), dbt manifest.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

# uv installs exactly the set pinned in uv.lock (versions and hashes) into .venv, the project editable.
# uv itself comes from PyPI into its own small venv (.venv-tools), so a clean clone needs only Python;
# it never downloads a Python of its own: .venv is made from $(PYTHON).
UV_VERSION := 0.13.9
TOOLS  := .venv-tools
UV     := $(TOOLS)/bin/uv
EXTRAS ?= --extra spark --extra postgres --extra s3 --extra dev
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)
# The interpreter's real path (not a pyenv shim), else uv rebuilds .venv on every sync.
UV_PY   = --python $(shell $(PYTHON) -c 'import sys; print(sys.executable)')

.PHONY: install lock java kafka-jars s3-jars s3-start s3-stop dbt-parse browser prometheus postgres test demo docs dagster-home clean kafka-start kafka-stop spark-start spark-stop screenshots

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install -q 'uv==$(UV_VERSION)'

# A pyproject.toml that uv.lock no longer satisfies stops here with one line (uv's own error otherwise).
$(STAMP): pyproject.toml uv.lock | $(UV)
	@out=$$($(UV) lock --check $(UV_PY) 2>&1) || { \
		case "$$out" in *"needs to be updated"*) \
			echo "pyproject.toml changed: run \`make lock\` (uv lock) and commit uv.lock" >&2;; \
			*) echo "$$out" >&2;; esac; exit 1; }
	$(UV) sync --frozen $(UV_PY) $(EXTRAS)
	touch $@

install: $(STAMP)

# After editing pyproject.toml's dependencies: resolve again and commit uv.lock.
# One package to its newest allowed version: make lock LOCK_ARGS='--upgrade-package duckdb'.
lock: | $(UV)
	$(UV) lock $(UV_PY) $(LOCK_ARGS)

# Java 17+ runs the broker and Maven fetches its jars. On Debian/Ubuntu both come from apt (sudo
# unless root; openjdk-17, or the default JRE where 17 is gone); elsewhere one line says what to install.
JAVA_OK := command -v java >/dev/null && command -v mvn >/dev/null && \
	[ "$$(java -version 2>&1 | sed -n -E 's/.* version "([0-9]+).*/\1/p' | head -n 1)" -ge 17 ] 2>/dev/null
JRE_PACKAGE := $$(apt-cache show openjdk-17-jre-headless >/dev/null 2>&1 && echo openjdk-17 || echo default)-jre-headless
java:
	@$(JAVA_OK) || { \
		command -v apt-get >/dev/null || \
			{ echo "make java: install Java 17 or newer and Maven (mvn), then run make again" >&2; exit 1; }; \
		$(SUDO) apt-get update -q && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(JRE_PACKAGE) maven && \
		{ $(JAVA_OK) || \
			{ echo "make java: 'java' is not Java 17+: choose one with update-alternatives --config java" >&2; exit 1; }; }; }

kafka-jars: install java
	$(BIN)/redset kafka fetch

# The local broker on 127.0.0.1:9092 (REDSET_KAFKA_PORT to change); data kept in .kafka/ across restarts.
kafka-start: kafka-jars
	$(BIN)/redset kafka start

kafka-stop: install
	$(BIN)/redset kafka stop

# The local S3-compatible server (S3Proxy, one shaded jar from Maven) on 127.0.0.1:9000 (REDSET_S3_PORT),
# bucket `redset`, objects kept in .s3/data/; `redset s3 status` prints the AWS_* lines for clients.
s3-jars: install java
	$(BIN)/redset s3 fetch

s3-start: s3-jars
	$(BIN)/redset s3 start

s3-stop: install
	$(BIN)/redset s3 stop

# The local Spark master (spark://127.0.0.1:7077, UI http://127.0.0.1:8090) and 2 workers, from pyspark's
# jars; state and logs in .spark/. REDSET_ENGINE=spark makes Dagster's dbt runs use it.
spark-start: install java
	$(BIN)/redset spark start

spark-stop: install
	$(BIN)/redset spark stop

# dbt's manifest for the Dagster asset definitions (never committed). Parsed by pipeline_assets/warehouse/dbt_assets.py
# in the environment Dagster's runs give dbt, so their first dbt invocation reuses the parse.
dbt-parse: install
	rm -f dbt_project/target/manifest.json
	$(BIN)/python -c 'import pipeline_assets.warehouse.dbt_assets'

# The dbt docs site: every model and column described, lineage sources -> staging -> marts.
# Writes dbt_project/target/index.html and static_index.html (one self-contained file to share),
# then serves them on http://127.0.0.1:8080 (DOCS_PORT=... to change). The catalog (column types)
# comes from the warehouse, data/warehouse.duckdb unless REDSET_WAREHOUSE says otherwise.
DOCS_PORT ?= 8080
docs: dbt-parse
	mkdir -p "$$(dirname "$${REDSET_WAREHOUSE:-$${REDSET_DATA_DIR:-data}/warehouse.duckdb}")"
	cd dbt_project && ../$(BIN)/dbt docs generate --profiles-dir . --project-dir . --static --quiet
	cd dbt_project && ../$(BIN)/dbt docs serve --profiles-dir . --project-dir . --host 127.0.0.1 --port $(DOCS_PORT) --no-browser

# A Dagster instance for running `dagster dev` by hand (DAGSTER_HOME=$$PWD/.dagster_home), with the
# `duckdb` concurrency pool limited to 1 (scripts/dagster.yaml). `make demo` makes its own.
dagster-home:
	mkdir -p .dagster_home
	test -f .dagster_home/dagster.yaml || cp scripts/dagster.yaml .dagster_home/dagster.yaml

# Headless Chromium for tests/test_browser.py, from Debian's packages (sudo unless root).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser:
	@test -x /usr/bin/chromium || ($(SUDO) apt-get update -q && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium)

# PostgreSQL's server binaries for the tests' own server (tests/postgres_support.py: initdb and pg_ctl on a free
# port in a temporary folder), from Debian's packages (sudo unless root), which put them in
# /usr/lib/postgresql/<version>/bin; the tests look there and on PATH.
PG_OK := command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1
postgres:
	@$(PG_OK) || { \
		command -v apt-get >/dev/null || \
			{ echo "make postgres: install PostgreSQL 13 or newer (initdb, pg_ctl on PATH), then run make again" >&2; exit 1; }; \
		$(SUDO) apt-get update -q && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql; }

# Prometheus and promtool for the metrics tests, built from Go source (Apache-2.0) with `go install`
# into the user's cache, so a new clone on this machine does not compile them again. The first
# build takes minutes (see docs/metrics.md); tests find them through REDSET_PROMETHEUS_BIN.
PROMETHEUS_VERSION := v0.316.0
PROMETHEUS_BIN ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/redset/prometheus-$(PROMETHEUS_VERSION)
export REDSET_PROMETHEUS_BIN := $(PROMETHEUS_BIN)
prometheus:
	@if [ -x "$(PROMETHEUS_BIN)/prometheus" ] && [ -x "$(PROMETHEUS_BIN)/promtool" ]; then exit 0; fi; \
	command -v go >/dev/null || { echo "make prometheus: install Go 1.26.7 or newer (what Prometheus's go.mod needs), then run make again" >&2; exit 1; }; \
	echo "make prometheus: building Prometheus $(PROMETHEUS_VERSION) into $(PROMETHEUS_BIN) (minutes, once)"; \
	GOBIN="$(PROMETHEUS_BIN)" go install github.com/prometheus/prometheus/cmd/prometheus@$(PROMETHEUS_VERSION) \
		github.com/prometheus/prometheus/cmd/promtool@$(PROMETHEUS_VERSION)

# Two workers: most tests wait on a broker, a JVM or a sensor, not a core. A module stays on one worker.
TEST_WORKERS ?= 2
test: install kafka-jars s3-jars dbt-parse browser prometheus postgres
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadscope

# `make demo SOURCE=<path or https URL>` replays real Redset instead of generated rows.
demo: install kafka-jars dbt-parse
	$(BIN)/redset demo $(if $(SOURCE),--source '$(SOURCE)')

# The pictures of README.md and docs/dagster.md (docs/lineage.png, docs/dashboard-*.png) from a real demo run with its own
# broker, free ports and a temporary folder, so a running `make demo` is left alone. A few minutes.
screenshots: install kafka-jars dbt-parse browser
	$(BIN)/python scripts/screenshots.py --out docs

clean:
	rm -rf $(VENV) $(TOOLS) .kafka .s3 .spark data dbt_project/target

# The two commands: `make demo` runs the main job, `make test` runs the tests.
# Everything installs itself from nothing: venv, packages, Kafka jars (Maven), dbt manifest.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: install kafka-jars dbt-parse browser test demo docs clean kafka-start kafka-stop

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

install: $(STAMP)

kafka-jars: install
	$(BIN)/redset kafka fetch

# The local broker on 127.0.0.1:9092 (REDSET_KAFKA_PORT to change); data kept in .kafka/ across restarts.
kafka-start: kafka-jars
	$(BIN)/redset kafka start

kafka-stop: install
	$(BIN)/redset kafka stop

dbt-parse: install
	cd dbt_project && ../$(BIN)/dbt parse --profiles-dir . --project-dir . --quiet

# Headless Chromium for tests/test_browser.py, from Debian's packages (sudo unless root).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser:
	@test -x /usr/bin/chromium || ($(SUDO) apt-get update -q && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium)

test: install kafka-jars dbt-parse browser
	$(BIN)/pytest

# `make demo SOURCE=<path or https URL>` replays real Redset instead of generated rows.
demo: install kafka-jars dbt-parse
	$(BIN)/redset demo $(if $(SOURCE),--source '$(SOURCE)')

clean:
	rm -rf $(VENV) .kafka data dbt_project/target

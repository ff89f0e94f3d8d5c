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

dbt-parse: install
	cd dbt_project && ../$(BIN)/dbt parse --profiles-dir . --project-dir . --quiet

test: install kafka-jars dbt-parse
	$(BIN)/pytest

demo: install kafka-jars dbt-parse
	$(BIN)/redset demo

clean:
	rm -rf $(VENV) .kafka data dbt_project/target

"""dbt's partial-parse state (target/partial_parse.msgpack), kept per profile.

dbt parses the whole project again, seconds of CPU per invocation, whenever the profile's
connection settings differ from those its saved state was made with ("Unable to do partial parsing
because profile has changed"): the warehouse path and DuckDB's settings. One project serves
builds with several profiles (the batch runs, the freshness check, every test's own warehouse),
so each profile keeps its own state, named by a hash of the target as profiles.yml renders it
(a variable the target does not end up using, such as REDSET_DATA_DIR beside REDSET_WAREHOUSE,
changes nothing).
dagster-dbt copies the project's state into an invocation's target folder only when none is
there yet, so seeding that folder first is enough.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import jinja2
import yaml

from pipeline_assets import settings

PARTIAL_PARSE_FILE = "partial_parse.msgpack"
KEPT = 16  # profiles whose state is kept; the least recently used go first
PROFILE = "redset"


def target_dir() -> Path:
    return settings.DBT_PROJECT_DIR / "target"


def store() -> Path:
    return target_dir() / "partial_parse"


def profile_key(target: str, env: Mapping[str, str] | None = None) -> str:
    """Names the profile dbt will render from `env` (default: this process's environment)."""
    rendered = rendered_target(target, os.environ if env is None else env)
    return hashlib.sha256(json.dumps([target, rendered], sort_keys=True).encode()).hexdigest()[:16]


def rendered_target(target: str, env: Mapping[str, str]) -> object:
    """The target's settings in profiles.yml, each string rendered as dbt renders it: Jinja with
    `env_var(name, default)`."""

    def env_var(name: str, default: str | None = None) -> str:
        if name in env:
            return env[name]
        if default is None:
            raise KeyError(f"profiles.yml reads {name}, which is not set and has no default")
        return default

    jinja = jinja2.Environment(undefined=jinja2.StrictUndefined)

    def render(value: object) -> object:
        if isinstance(value, str):
            return jinja.from_string(value).render(env_var=env_var)
        if isinstance(value, dict):
            return {key: render(item) for key, item in value.items()}
        if isinstance(value, list):
            return [render(item) for item in value]
        return value

    profiles = yaml.safe_load((settings.DBT_PROJECT_DIR / "profiles.yml").read_text())
    return render(profiles[PROFILE]["outputs"][target])


def new_target_path(name: str) -> Path:
    """A fresh invocation folder under target/, relative as dagster-dbt's own are."""
    return Path("target") / f"{name}-{uuid.uuid4().hex[:8]}"


def seed(target_path: Path, key: str) -> None:
    """Before an invocation: this profile's kept state, if any, in its target folder."""
    kept = store() / f"{key}.msgpack"
    folder = target_path if target_path.is_absolute() else settings.DBT_PROJECT_DIR / target_path
    if (folder / PARTIAL_PARSE_FILE).exists():
        return
    folder.mkdir(parents=True, exist_ok=True)
    try:
        shutil.copyfile(kept, folder / PARTIAL_PARSE_FILE)
        os.utime(kept)  # recently used: pruned last
    except FileNotFoundError:  # none yet, or pruned meanwhile: dbt parses in full once
        pass


def keep(target_path: Path, key: str) -> None:
    """After an invocation: its state, for the next one with this profile, and as the project's
    default (what dagster-dbt and live mode start from when a profile has none yet)."""
    folder = target_path if target_path.is_absolute() else settings.DBT_PROJECT_DIR / target_path
    produced = folder / PARTIAL_PARSE_FILE
    if not produced.exists():
        return
    store().mkdir(parents=True, exist_ok=True)
    for kept in (store() / f"{key}.msgpack", target_dir() / PARTIAL_PARSE_FILE):
        staged = kept.with_name(f".{kept.name}.{os.getpid()}")
        shutil.copyfile(produced, staged)
        os.replace(staged, kept)  # atomic: a dbt starting now reads the old file or the new one
    prune()


@contextmanager
def around(target_path: Path, target: str) -> Iterator[None]:
    """One dbt invocation in the block, in the environment it runs in: this profile's kept state
    seeded into its target folder before, and its own state kept after."""
    key = profile_key(target)
    seed(target_path, key)
    try:
        yield
    finally:
        keep(target_path, key)


def prune() -> None:
    states = []
    for state in store().glob("*.msgpack"):
        try:
            states.append((state.stat().st_mtime, state))
        except FileNotFoundError:  # pruned by another process meanwhile
            pass
    for _, old in sorted(states, reverse=True)[KEPT:]:
        old.unlink(missing_ok=True)

"""Java and Maven for the JVM services the project runs (the Kafka broker, the S3 server): where
`java` is, its version, and pinned jars copied from Maven Central once into a shared cache."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from filelock import FileLock


class FetchError(RuntimeError):
    """mvn could not copy the jars; the message has its command and output."""


def find_tool(tool: str) -> str | None:
    """`tool` on PATH; for java also $JAVA_HOME/bin/java."""
    path = shutil.which(tool)
    if tool == "java" and path is None and os.environ.get("JAVA_HOME"):
        candidate = Path(os.environ["JAVA_HOME"]) / "bin" / "java"
        path = str(candidate) if candidate.exists() else None
    return path


def java_major(java: str) -> int | None:
    """The major version `java -version` reports (None when it says none)."""
    out = subprocess.run([java, "-version"], capture_output=True, text=True).stderr
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    if not match:
        return None
    # Java 8 and older call themselves "1.8".
    return int(match.group(2) or 0) if match.group(1) == "1" else int(match.group(1))


def copy_dependencies(
    mvn: Callable[[], str], pom: Path, target: Path, label: str, expect: str, args: Sequence[str] = (),
    quiet: bool = False,
) -> Path:
    """`mvn dependency:copy-dependencies` of `pom` into `target` once (a jar matching `expect` must
    come out); later calls return at once. `mvn()` finds Maven, asked only when fetching.
    `.complete`, written last, marks a finished folder."""
    done = target / ".complete"
    if done.exists():
        if not quiet:
            print(f"{label} jars are cached in {target}")
        return target
    mvn_path = mvn()
    target.parent.mkdir(parents=True, exist_ok=True)
    # Several test sessions may start at once: one fetches, the others wait for it.
    with FileLock(target.parent / ".fetch.lock"):
        if done.exists():
            return target
        if not quiet:
            print(f"Fetching {label} jars from Maven Central into {target} ...", flush=True)
        started = time.monotonic()
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
        cmd = [
            mvn_path, "-q", "-B", "-Dstyle.color=never", "-f", str(pom),
            "dependency:copy-dependencies", "-DincludeScope=runtime", f"-DoutputDirectory={staging}", *args,
        ]  # fmt: skip
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0 or not list(staging.glob(expect)):
            shutil.rmtree(staging, ignore_errors=True)
            raise FetchError(
                f"mvn could not fetch the {label} jars (exit {result.returncode}); is Maven Central reachable?\n"
                f"{' '.join(cmd)}\n{(result.stdout + result.stderr).strip()[-3000:]}"
            )
        shutil.rmtree(target, ignore_errors=True)  # a half-copied folder from an older, broken run
        staging.rename(target)
        done.write_text(f"{label}\n")
        if not quiet:
            count = len(list(target.glob("*.jar")))
            print(f"Fetched {count} jars in {time.monotonic() - started:.1f}s")
    return target

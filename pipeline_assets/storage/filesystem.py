"""The file system behind a zone URL, and the check that it answers.

The library: fsspec, with s3fs for s3:// (the `s3` extra). Chosen over pyarrow.fs.S3FileSystem because
dbt-duckdb reads object storage through an fsspec file system registered with DuckDB (its `filesystems:`
profile setting; DuckDB's own httpfs extension cannot be downloaded here), so the pipeline's writers and
dbt's reads go through one S3 client, configured once from the same AWS_* variables. A local folder is
fsspec's LocalFileSystem, so code written against this module runs on either.

S3-compatible servers (S3Proxy, older MinIO) reject the CRC32 checksum headers botocore sends by default
since 1.36: checksums are sent only where an operation requires them (S3_CONFIG). On such servers
DeleteObjects (fsspec's rm of several paths, mv) still fails that way: delete objects one by one (rm_file).
"""

from __future__ import annotations

import os
from typing import Any

from pipeline_assets.storage.location import StorageError, is_remote, split_s3

S3_CONFIG: dict[str, Any] = {
    "request_checksum_calculation": "when_required",
    "response_checksum_validation": "when_required",
}
# The check fails fast on a wrong endpoint: no retries (botocore's nor s3fs's own), a short connect timeout.
CHECK_CONFIG: dict[str, Any] = {**S3_CONFIG, "retries": {"max_attempts": 1, "mode": "standard"}, "connect_timeout": 5}


def endpoint() -> str:
    """Where s3:// requests go (AWS_ENDPOINT_URL, which botocore reads itself)."""
    return os.environ.get("AWS_ENDPOINT_URL", "").strip() or "AWS's own endpoint"


def filesystem(url: str, fast_fail: bool = False) -> tuple[Any, str]:
    """(an fsspec file system, the path on it) for a folder or an s3:// URL. Credentials, region and
    endpoint come from the AWS_* variables (botocore's own lookup), never from the project's files."""
    if not is_remote(url):
        from fsspec.implementations.local import LocalFileSystem

        return LocalFileSystem(), url
    try:
        import s3fs
    except ImportError as exc:
        raise StorageError(f"{url} needs s3fs: install the `s3` extra (pip install -e '.[s3]'; make install does)") from exc
    bucket, prefix = split_s3(url)
    # A fresh instance (not fsspec's shared cache): the check's fast-fail settings must not leak into writers.
    fs = s3fs.S3FileSystem(config_kwargs=CHECK_CONFIG if fast_fail else S3_CONFIG, skip_instance_cache=True)
    if fast_fail:
        fs.retries = 1  # s3fs's own retry loop (a class attribute), around botocore's
    return fs, f"{bucket}/{prefix}".rstrip("/")


def is_published(name: str) -> bool:
    """Hidden and `_` names are temporary files or markers, which no reader of a zone reads."""
    return not name.rsplit("/", 1)[-1].startswith((".", "_"))


def published(url: str | os.PathLike[str], pattern: str) -> tuple[Any, list[str]]:
    """(the file system, the sorted paths on it) of the files under `url` that match `pattern`,
    without hidden or `_` names (temporary files, markers): what a reader of a zone may read. On S3
    the paths are s3:// URLs, which DuckDB reads once the file system is registered (register)."""
    fs, root = filesystem(str(url))
    found = fs.glob(f"{str(root).rstrip('/')}/{pattern}")
    scheme = "s3://" if is_remote(str(url)) else ""
    return fs, sorted(scheme + p for p in found if is_published(p))


def register(con: Any, fs: Any) -> None:
    """Let a DuckDB connection read s3:// through `fs` (s3fs), as dbt-duckdb's `filesystems:` does;
    nothing for a local file system or one already registered."""
    protocols = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
    if "s3" in protocols and not set(protocols) & set(con.list_filesystems()):
        con.register_filesystem(fs)


def check(url: str) -> None:
    """Raise StorageError, one line naming `url` and the endpoint (never a secret), unless the storage
    answers: a folder can be made, a bucket exists and the credentials may read it."""
    if not is_remote(url):
        try:
            os.makedirs(url, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot make the folder {url}: {exc.strerror}") from exc
        return
    fs, _ = filesystem(url, fast_fail=True)
    import botocore.exceptions  # s3fs's dependency, there once filesystem() found s3fs

    bucket, _ = split_s3(url)
    where = f"{url} (endpoint {endpoint()})"
    try:
        fs.call_s3("head_bucket", Bucket=bucket)
    except FileNotFoundError as exc:
        raise StorageError(f"{where}: the bucket {bucket!r} does not exist; create it first") from exc
    except PermissionError as exc:
        raise StorageError(
            f"{where}: access denied; check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_REGION)"
        ) from exc
    except botocore.exceptions.NoCredentialsError as exc:
        raise StorageError(f"{where}: no credentials; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY") from exc
    except (botocore.exceptions.EndpointConnectionError, botocore.exceptions.ConnectTimeoutError, OSError) as exc:
        raise StorageError(f"{where}: no answer from the S3 endpoint; is AWS_ENDPOINT_URL right?") from exc
    except botocore.exceptions.BotoCoreError as exc:
        raise StorageError(f"{where}: the S3 request failed ({type(exc).__name__})") from exc

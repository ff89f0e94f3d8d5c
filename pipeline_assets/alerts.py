"""The one alert path: a line in `data/alerts.log` and, when ALERT_WEBHOOK_URL is set, a JSON POST.

Every alert of the pipeline goes through `send_alert` (failed runs, a message that crashed the
dump, stale marts, ...). Nothing secret may reach the log file, the webhook body or Dagster's
logs: URLs and the values of `KAFKA_SASL_*`, `KAFKA_*PASSWORD*` and `KAFKA_*SECRET*` variables
are redacted from every text first, and every field loses its line breaks (one alert, one line).
A webhook is waited for at most `webhook_wait_s` (WEBHOOK_WAIT_S): a receiver that hangs or
trickles its answer never holds the caller (a sensor's tick) beyond that; the POST goes on in
the background and the alert is in the log either way.
"""

from __future__ import annotations

import os
import re
import threading
from datetime import datetime, timezone
from typing import Any

import requests

from pipeline_assets import settings
from pipeline_assets.durable import rotate_if_larger

REDACTED = "<redacted>"
# scheme://anything-up-to-whitespace: a webhook URL may carry a token in its path or query.
_URL_RE = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>]+")
_SECRET_NAME_RE = re.compile(r"^(KAFKA_SASL_.*|KAFKA_.*(PASSWORD|SECRET).*|ALERT_WEBHOOK_URL)$", re.IGNORECASE)
_LINE_BREAKS = re.compile(r"[\r\n\x0b\x0c\x85\u2028\u2029]+")
WEBHOOK_WAIT_S = 5.0  # per alert; requests' timeout bounds each socket read, not the whole answer


def _secret_values() -> list[str]:
    names = [n for n in os.environ if _SECRET_NAME_RE.match(n)]
    values = {os.environ[n].strip() for n in names}
    # Longest first, so a secret that contains another is replaced whole.
    return sorted((v for v in values if len(v) >= 3), key=len, reverse=True)


def redact(text: str) -> str:
    """`text` with URLs and the values of secret variables (KAFKA_SASL_*, KAFKA_*PASSWORD*,
    KAFKA_*SECRET*, the webhook URL) replaced."""
    for value in _secret_values():
        text = text.replace(value, REDACTED)
    return _URL_RE.sub(REDACTED, text)


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return _LINE_BREAKS.sub(" ", redact(value))
    if isinstance(value, dict):
        return {k: _redact_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_redact_value(v) for v in value]
    return value


def send_alert(
    event: str, message: str, log: Any = None, *, webhook_wait_s: float = WEBHOOK_WAIT_S, **fields: Any
) -> dict[str, Any]:
    """Append one line `<time> <EVENT> k=v ...: <message>` to the alert log; POST the same as JSON.

    `event` is a snake_case kind ("run_failure", "dump_failed", ...); `fields` name what the
    alert is about (job, run_id, topic, partition, offset, ...); None values are left out of the
    line. Returns the (redacted) payload that was written.
    """
    payload: dict[str, Any] = {
        "event": event,
        "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **fields,
        "message": message,
    }
    payload = _redact_value(payload)
    path = settings.alert_log_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    rotate_if_larger(path, settings.bound("log_max_bytes"))
    about = "".join(f" {k}={_LINE_BREAKS.sub(' ', redact(str(payload[k])))}" for k in fields if payload[k] is not None)
    one_line = " ".join(payload["message"].split())  # one line, whatever the error looked like
    with path.open("a", encoding="utf-8") as out:
        out.write(f"{payload['time']} {event.upper().replace('_', ' ')}{about}: {one_line}\n")
    url = os.environ.get("ALERT_WEBHOOK_URL", "").strip()
    if url:
        post = threading.Thread(target=_post, args=(url, payload, log), name=f"alert-{event}", daemon=True)
        post.start()
        post.join(webhook_wait_s)
        if post.is_alive() and log is not None:
            log.warning(f"alert webhook gave no answer within {webhook_wait_s:.0f}s; the alert is in {path}")
    return payload


def _post(url: str, payload: dict[str, Any], log: Any) -> None:
    try:
        requests.post(url, json=payload, timeout=10).raise_for_status()
    except requests.RequestException as exc:
        # requests' messages quote the URL's path and host: name the failure, not its text.
        status = getattr(exc.response, "status_code", None)
        if log is not None:
            log.warning(f"alert webhook failed: {type(exc).__name__}{f' (HTTP {status})' if status else ''}")

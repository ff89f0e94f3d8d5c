"""The one alert path: a line in `data/alerts.log` and, when ALERT_WEBHOOK_URL is set, a JSON POST.

Every alert of the pipeline goes through `send_alert` (failed runs, a message that crashed the
dump, stale marts, ...). Nothing secret may reach the log file, the webhook body or Dagster's
logs: URLs and the values of `KAFKA_SASL_*` variables are redacted from every text first.
"""

from __future__ import annotations

import os
import re
from datetime import datetime, timezone
from typing import Any

import requests

from pipeline_assets import settings
from pipeline_assets.durable import rotate_if_larger

REDACTED = "<redacted>"
# scheme://anything-up-to-whitespace: a webhook URL may carry a token in its path or query.
_URL_RE = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>]+")
_SECRET_PREFIXES = ("KAFKA_SASL_",)
_SECRET_NAMES = ("ALERT_WEBHOOK_URL",)


def _secret_values() -> list[str]:
    names = [n for n in os.environ if n.startswith(_SECRET_PREFIXES) or n in _SECRET_NAMES]
    values = {os.environ[n].strip() for n in names}
    # Longest first, so a secret that contains another is replaced whole.
    return sorted((v for v in values if len(v) >= 3), key=len, reverse=True)


def redact(text: str) -> str:
    """`text` with URLs and the values of KAFKA_SASL_* (and the webhook URL) replaced."""
    for value in _secret_values():
        text = text.replace(value, REDACTED)
    return _URL_RE.sub(REDACTED, text)


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _redact_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_redact_value(v) for v in value]
    return value


def send_alert(event: str, message: str, log: Any = None, **fields: Any) -> dict[str, Any]:
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
    about = "".join(f" {k}={payload[k]}" for k in fields if payload[k] is not None)
    one_line = " ".join(payload["message"].split())  # one line, whatever the error looked like
    with path.open("a", encoding="utf-8") as out:
        out.write(f"{payload['time']} {event.upper().replace('_', ' ')}{about}: {one_line}\n")
    url = os.environ.get("ALERT_WEBHOOK_URL", "").strip()
    if url:
        try:
            requests.post(url, json=payload, timeout=10).raise_for_status()
        except requests.RequestException as exc:
            # requests' messages quote the URL's path and host: name the failure, not its text.
            status = getattr(exc.response, "status_code", None)
            if log is not None:
                log.warning(f"alert webhook failed: {type(exc).__name__}{f' (HTTP {status})' if status else ''}")
    return payload

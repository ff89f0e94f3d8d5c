"""The alert path keeps secrets out of the alert log, the webhook body and Dagster's logs."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer, ThreadingHTTPServer
from pathlib import Path

import pytest

from pipeline_assets.alerts import REDACTED, redact, send_alert
from conftest import free_ports


class _Log:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def warning(self, text: str) -> None:
        self.lines.append(text)


def test_redact_removes_urls_and_sasl_values(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", "hunter2-secret")
    monkeypatch.setenv("KAFKA_SASL_USERNAME", "svc-redset")
    text = "auth failed for svc-redset with hunter2-secret at https://hooks.example/T0/B1?token=abc and sasl://x"
    assert redact(text) == f"auth failed for {REDACTED} with {REDACTED} at {REDACTED} and {REDACTED}"
    assert redact("nothing secret: partition=2 offset=17") == "nothing secret: partition=2 offset=17"


def test_a_failing_webhook_leaves_no_secret_in_the_logs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    [port] = free_ports(1)  # nothing listens there: the POST fails
    url = f"http://127.0.0.1:{port}/hook/T0123/secret-token"
    monkeypatch.setenv("ALERT_WEBHOOK_URL", url)
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", "pa55word-xyz")
    monkeypatch.setenv("REDSET_ALERT_LOG", str(tmp_path / "alerts.log"))
    log = _Log()

    payload = send_alert("run_failure", "SASL auth with pa55word-xyz failed", log, job="dump_kafka_job", run_id="r1")

    [line] = (tmp_path / "alerts.log").read_text().splitlines()
    assert "RUN FAILURE job=dump_kafka_job run_id=r1: SASL auth with <redacted> failed" in line
    assert payload["message"] == "SASL auth with <redacted> failed"
    [warning] = log.lines
    assert warning.startswith("alert webhook failed")
    for text in (line, warning, json.dumps(payload)):
        assert "secret-token" not in text and "pa55word-xyz" not in text and str(port) not in text


class _Receiver(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self):  # noqa: N802 (http.server's naming)
        _Receiver.received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_the_webhook_gets_the_redacted_payload(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("ALERT_WEBHOOK_URL", f"http://127.0.0.1:{server.server_port}/hook")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", "pa55word-xyz")
    monkeypatch.setenv("REDSET_ALERT_LOG", str(tmp_path / "alerts.log"))
    try:
        send_alert("dump_failed", "bad pa55word-xyz", None, topic="t", partition=1, offset=42)
    finally:
        server.shutdown()
    [payload] = _Receiver.received
    assert payload["event"] == "dump_failed"
    assert (payload["topic"], payload["partition"], payload["offset"]) == ("t", 1, 42)
    assert payload["message"] == "bad <redacted>"


def test_alert_fields_lose_newlines_and_kafka_passwords_and_secrets_are_redacted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("KAFKA_SSL_KEY_PASSWORD", "keypass-123")
    monkeypatch.setenv("KAFKA_OAUTH_CLIENT_SECRET", "oauth-xyz")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "broker-9")  # not a secret: kept
    monkeypatch.setenv("REDSET_ALERT_LOG", str(tmp_path / "alerts.log"))
    forged = "real.parquet\n2026-01-01T00:00:00+00:00 RUN FAILURE job=forged: keypass-123"

    payload = send_alert("landing_file_abandoned", "oauth-xyz\r\nline two via broker-9", None, file=forged, run_id=7)

    [line] = (tmp_path / "alerts.log").read_text().splitlines()
    assert line.endswith(
        f"LANDING FILE ABANDONED file=real.parquet 2026-01-01T00:00:00+00:00 RUN FAILURE job=forged: {REDACTED} "
        f"run_id=7: {REDACTED} line two via broker-9"
    )
    assert payload["file"] == f"real.parquet 2026-01-01T00:00:00+00:00 RUN FAILURE job=forged: {REDACTED}"
    assert "keypass-123" not in json.dumps(payload) and "oauth-xyz" not in json.dumps(payload)


def _trickling_server() -> tuple[HTTPServer, list[int]]:
    """A webhook that answers one byte a second and never finishes its status line."""
    posts: list[int] = []

    class Trickle(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            posts.append(1)
            self.rfile.read(int(self.headers["Content-Length"]))
            try:
                while True:
                    self.wfile.write(b"H")
                    self.wfile.flush()
                    threading.Event().wait(1.0)
            except OSError:
                pass

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Trickle)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, posts


def test_a_hanging_webhook_does_not_hold_the_caller(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    server, posts = _trickling_server()
    monkeypatch.setenv("ALERT_WEBHOOK_URL", f"http://127.0.0.1:{server.server_port}/hook")
    monkeypatch.setenv("REDSET_ALERT_LOG", str(tmp_path / "alerts.log"))
    log = _Log()
    sender = threading.Thread(
        target=send_alert, args=("dump_failed", "boom", log), kwargs={"webhook_wait_s": 2.0}, daemon=True
    )
    sender.start()
    sender.join(60)  # Dagster's sensor timeout: a caller held past it loses its tick
    server.shutdown()
    assert not sender.is_alive(), "send_alert is still waiting for a webhook that never answers"
    assert posts == [1]
    assert len((tmp_path / "alerts.log").read_text().splitlines()) == 1
    assert log.lines == [f"alert webhook gave no answer within 2s; the alert is in {tmp_path / 'alerts.log'}"]

"""What the agent reports about a reload holds no secret, whatever validation quoted."""

from __future__ import annotations

import json
from pathlib import Path

from agent.status import finding_text, findings_summary
from hotconf.findings import Finding, Level, Report
from hotconf.snapshot import evaluate

URL_PASSWORD = "pw-in-a-url-5678"
WITH_BAD_URL = (
    "backend:\n  server_port: 8001\n  llm:\n    ollama:\n"
    f"      host: 'http://bot:{URL_PASSWORD}@127.0.0.1:99999'\n"
    "memory: {}\nui: {}\nchat: {}\nlogging: {}\n"
).encode()


class TestFindingsSummary:
    def test_a_refused_url_is_quoted_without_its_password(self) -> None:
        snapshot = evaluate({"config.yaml": WITH_BAD_URL}, Path("/etc/autobot"), {})

        summary = findings_summary(snapshot.report)

        assert URL_PASSWORD not in json.dumps(summary)
        [finding] = [item for item in summary["findings"]
                     if item["path"] == "backend.llm.ollama.host"]
        assert "http://bot:********@127.0.0.1:99999" in finding["message"]

    def test_critical_findings_and_their_one_line_form_are_masked(self) -> None:
        # Whatever a finding quotes, the agent masks it on the way out.
        critical = Finding(
            Level.CRITICAL, "url", f"'redis://:{URL_PASSWORD}@db' refused",
            path="memory.redis.url",
        )
        report = Report([critical])

        summary = findings_summary(report)

        assert URL_PASSWORD not in json.dumps(summary)
        assert URL_PASSWORD not in finding_text(critical)
        assert summary["critical_findings"] == [finding_text(critical)]

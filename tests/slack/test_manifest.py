"""The Slack app manifest asks for what the listeners use; the docs it names exist."""

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ROOT / "bot" / "slack_manifest.yaml"


def test_manifest_declares_scopes_events_command_and_interactivity():
    manifest = yaml.safe_load(MANIFEST.read_text())
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    assert {"app_mentions:read", "chat:write", "commands", "im:history", "channels:history",
            "reactions:write"} <= scopes
    settings = manifest["settings"]
    assert set(settings["event_subscriptions"]["bot_events"]) == {"app_mention", "message.im"}
    assert settings["event_subscriptions"]["request_url"].endswith("/slack/events")
    assert settings["interactivity"]["is_enabled"] is True
    (command,) = manifest["features"]["slash_commands"]
    assert command["command"] == "/ask" and command["url"].endswith("/slack/events")
    assert manifest["features"]["app_home"]["messages_tab_enabled"] is True  # people can DM the bot


def test_every_doc_named_by_the_slack_code_and_manifest_exists():
    sources = [MANIFEST, *sorted((ROOT / "bot" / "slack").rglob("*.py"))]
    named = {m for path in sources for m in re.findall(r"docs/[\w./-]+\.md", path.read_text())}
    assert "docs/slack.md" in named
    assert [doc for doc in sorted(named) if not (ROOT / doc).is_file()] == []

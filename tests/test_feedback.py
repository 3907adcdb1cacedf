"""The feedback store's start-up and its export from the CLI (bot/slack/feedback.py, `qa feedback export`).

The store's other behaviour is tested in tests/slack/test_feedback_store.py.
"""

from __future__ import annotations

import subprocess
import sys

from typer.testing import CliRunner

from bot.cli import app

OPEN_AT = r"""
import sys
from bot.slack.feedback import FeedbackStore
print("ready", flush=True)
sys.stdin.readline()  # all processes open the fresh database at once, when the test says go
FeedbackStore(sys.argv[1]).close()
"""


def test_processes_opening_a_fresh_database_at_once_all_start(tmp_path):
    """Guards against: 1-2 of 8 failed on create_all ("table qa_answers already exists")."""
    procs = [subprocess.Popen([sys.executable, "-c", OPEN_AT, f"sqlite:///{tmp_path / f'fb{db}.sqlite'}"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for db in range(4) for _ in range(8)]  # four fresh databases, eight processes each
    for p in procs:  # every interpreter has imported SQLAlchemy: none is still starting up
        assert p.stdout.readline().strip() == "ready", p.communicate(timeout=90)[1][-800:]
    for p in procs:
        p.stdin.write("go\n")
        p.stdin.flush()
    failures = [p.communicate(timeout=90)[1] for p in procs if p.wait(90) != 0]
    assert failures == [], f"{len(failures)} of 32 failed: " + failures[0][-800:]


def test_export_refuses_to_overwrite_a_file_without_force(tmp_path):
    out = tmp_path / "set.jsonl"
    out.write_text('{"id": "hand-made", "question": "Q?", "answers": ["A"]}\n')
    env = {"QA_FEEDBACK_DB_URL": f"sqlite:///{tmp_path / 'fb.sqlite'}", "QA_DATA_DIR": str(tmp_path / "data")}
    refused = CliRunner().invoke(app, ["feedback", "export", str(out)], env=env)
    assert refused.exit_code == 2 and "already exists" in refused.output and "--force" in refused.output
    assert "hand-made" in out.read_text()  # guards against: silently replaced by an empty export
    forced = CliRunner().invoke(app, ["feedback", "export", str(out), "--force"], env=env)
    assert forced.exit_code == 0, forced.output
    assert out.read_text() == ""

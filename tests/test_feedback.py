"""The feedback store's start-up and its export from the CLI (bot/slack/feedback.py, `qa feedback export`).

The store's other behaviour is tested in tests/slack/test_feedback_store.py.
"""

from __future__ import annotations

import subprocess
import sys

from typer.testing import CliRunner

from bot.cli import app

# One fresh interpreter imports SQLAlchemy once, then forks the racing processes: each is a real process
# with its own engine and connection, and they all start at the same instant (a pipe closing wakes them
# together), without paying 32 interpreter start-ups.
OPEN_AT = r"""
import os, sys, traceback
from bot.slack.feedback import FeedbackStore
urls = sys.argv[1:]
go_read, go_write = os.pipe()
children = {}
for url in urls:
    pid = os.fork()
    if pid == 0:
        os.close(go_write)
        os.read(go_read, 1)  # blocks until the parent closes its end: every child opens at once
        code = 0
        try:
            FeedbackStore(url).close()
        except BaseException:
            traceback.print_exc()
            code = 1
        sys.stderr.flush()
        os._exit(code)
    children[pid] = url
os.close(go_read)
print("ready", len(children), flush=True)  # all children forked, none has opened its database yet
sys.stdin.readline()
os.close(go_write)  # go
failed = 0
for _ in range(len(children)):
    _, status = os.wait()
    failed += os.waitstatus_to_exitcode(status) != 0
print("failed", failed, flush=True)
"""


def test_processes_opening_a_fresh_database_at_once_all_start(tmp_path):
    """Guards against: 1-2 of 8 failed on create_all ("table qa_answers already exists")."""
    urls = [f"sqlite:///{tmp_path / f'fb{db}.sqlite'}" for db in range(4) for _ in range(8)]  # 4 databases x 8
    proc = subprocess.Popen([sys.executable, "-c", OPEN_AT, *urls], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    ready = proc.stdout.readline().strip()
    assert ready == "ready 32", proc.communicate(timeout=90)[1][-800:]
    out, err = proc.communicate("go\n", timeout=90)
    assert proc.returncode == 0, err[-800:]
    assert out.strip() == "failed 0", f"{out.strip()} of 32: " + err[-800:]


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

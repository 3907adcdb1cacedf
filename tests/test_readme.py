"""The README's set-up commands and CI stay in step."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```bash\n(.+?)\n```", text, flags=re.S)[:2]


def test_readme__starts_with_two_setup_commands():
    body = (ROOT / "README.md").read_text().split("\n", 1)[1].lstrip()
    assert body.startswith("```bash"), "the commands come first, right under the title"
    first_prose = body.split("```\n\n", 1)[0]
    assert first_prose.count("```bash") == 2, "exactly two commands before any prose"
    install, tests = _readme_commands()
    assert "torch==2.13.0" in install and "qa index seeds/" in install and "qa ask" in install
    assert "pytest" in tests


def test_ci_runs_the_readme_test_command_verbatim():
    _, tests = _readme_commands()
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert tests in ci

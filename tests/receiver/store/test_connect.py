"""``state:`` URLs mean what they say (``receiver.store.connect``): ``sqlite:///ABS`` is an
absolute path, as the README shows; ``sqlite:REL`` is relative; a host, a query or no file
is refused saying so; ``config check`` opens the file the URL names or says exactly why not."""

from __future__ import annotations

from pathlib import Path

import pytest

from receiver.cli.main import main
from receiver.errors import StateError
from receiver.store.connect import sqlite_path
from tests.support.fakeclock import FakeClock


@pytest.mark.parametrize(("url", "path"), [
    ("sqlite:///var/lib/remediator/state.db", "/var/lib/remediator/state.db"),  # the README's
    ("sqlite:////var/lib/remediator/state.db", "/var/lib/remediator/state.db"),  # SQLAlchemy's spelling
    ("sqlite://localhost/var/lib/state.db", "/var/lib/state.db"),
    ("sqlite:remediator-state.db", "remediator-state.db"),  # the default: the working directory
    ("sqlite:data/state.db", "data/state.db"),
])
def test_sqlite_urls_name_the_file_they_say(url: str, path: str) -> None:
    assert sqlite_path(url) == Path(path)


@pytest.mark.parametrize(("url", "why"), [
    ("sqlite://db/state.db", "a SQLite file is on this host, not on 'db'"),
    ("sqlite:///", "names no file"),
    ("sqlite:", "names no file"),
    ("sqlite:///var/lib/", "names no file"),
    ("sqlite:///x.db?mode=ro", "takes no query"),
])
def test_sqlite_urls_that_name_no_file_say_why(url: str, why: str) -> None:
    with pytest.raises(StateError, match=why) as caught:
        sqlite_path(url)
    assert "sqlite:///ABSOLUTE/PATH or sqlite:RELATIVE/PATH" in str(caught.value)


async def test_the_absolute_url_opens_that_file(tmp_path: Path) -> None:
    from receiver.store.connect import open_store  # noqa: PLC0415

    store = open_store(f"sqlite://{tmp_path}/state.db", clock=FakeClock())  # sqlite:///tmp/...
    await store.open()
    await store.close()
    assert (tmp_path / "state.db").is_file()


def check(tmp_path: Path, capsys: pytest.CaptureFixture[str], state: str) -> tuple[int, str]:
    config = tmp_path / "remediator.yaml"
    config.write_text(f"state: {state}\naudit: {tmp_path / 'audit.jsonl'}\n")
    code = main(["config", "check", str(config)])
    return code, capsys.readouterr().out


def test_config_check_says_why_the_readme_state_cannot_open_here(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    code, out = check(tmp_path, capsys, f"sqlite://{tmp_path}/missing/state.db")
    assert code == 1
    missing = tmp_path / "missing"
    assert f"state: directory {missing} does not exist (for the database {missing}/state.db)" in out


def test_config_check_opens_an_existing_database_and_refuses_a_file_that_is_not_one(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "junk.db").write_bytes(b"not a database, but long enough to be read as one" * 20)
    code, out = check(tmp_path, capsys, f"sqlite://{tmp_path}/junk.db")
    assert code == 1
    assert f"state: cannot open {tmp_path}/junk.db: file is not a database" in out
    (tmp_path / "dir.db").mkdir()
    code, out = check(tmp_path, capsys, f"sqlite://{tmp_path}/dir.db")
    assert (code, f"state: {tmp_path}/dir.db is not a file" in out) == (1, True)
    code, out = check(tmp_path, capsys, f"sqlite://{tmp_path}/new.db")  # serve would make it
    assert code == 0, out
    assert not (tmp_path / "new.db").exists()  # config check changes nothing


def test_config_check_reports_a_state_url_with_a_host(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    code, out = check(tmp_path, capsys, "sqlite://db/state.db")
    assert code == 1
    assert "state: state 'sqlite://db/state.db': a SQLite file is on this host, not on 'db'" in out

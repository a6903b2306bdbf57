"""``kdruid quickstart --bind``: every role listens on 127.0.0.1 unless asked otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.config import load_settings
from common.serve import bind_address
from services.cli import main
from services.quickstart import Quickstart
from services.quickstart_bind import bind_environment, check_bind


def test_default_is_loopback_only_announcing_localhost() -> None:
    env = bind_environment("127.0.0.1")
    assert env == {"druid_host": "localhost", "druid_bindOnHost": "true"}
    settings = load_settings("broker", environ=env)
    assert settings.node.host == "localhost"
    assert bind_address(settings) == "localhost"


def test_all_interfaces_still_announces_localhost() -> None:
    env = bind_environment("0.0.0.0")
    settings = load_settings("broker", environ=env)
    assert settings.node.host == "localhost"
    assert bind_address(settings) == "0.0.0.0"


def test_another_address_is_announced_and_the_only_one_listened_on() -> None:
    env = bind_environment("10.1.2.3")
    settings = load_settings("broker", environ=env)
    assert (settings.node.host, bind_address(settings)) == ("10.1.2.3", "10.1.2.3")


def test_children_are_reached_where_they_listen(tmp_path: Path) -> None:
    assert {c.url for c in Quickstart(tmp_path).children.values()} == {
        f"http://localhost:{p}" for p in (8081, 8082, 8083, 8090, 8100)
    }
    qs = Quickstart(tmp_path, bind="127.0.0.2")
    assert qs.children["broker"].url == "http://127.0.0.2:8082"


def test_check_bind_refuses_what_it_cannot_listen_on() -> None:
    assert check_bind("127.0.0.1") is None
    assert check_bind("0.0.0.0") is None
    assert check_bind("localhost") is None
    assert "expected an IPv4 address" in (check_bind("every") or "")
    assert "not an address of this machine" in (check_bind("192.0.2.77") or "")


def test_cli_refuses_a_bad_bind_before_starting_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["quickstart", "--dir", str(tmp_path / "qs"), "--bind", "not-an-address"])
    assert code == 2
    assert "--bind 'not-an-address'" in capsys.readouterr().err
    assert not (tmp_path / "qs").exists()

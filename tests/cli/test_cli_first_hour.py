"""No dead ends in the first hour (issue 11), against a real listener: endpoint names work wherever
ids do, `wait` validates and explains itself, a 401 says which variables to set, empty lists say
so, multi-line events keep the table's columns, and help keeps flag names whole at 80 columns."""

from __future__ import annotations

import re
import sqlite3
import time
from typing import Any

import click
import typer

from podium.cli.main import app as cli_app
from tests.cli.conftest import Cli, Server

CMD = "python3 server.py --port $PORT"


def _create(cli: Cli, name: str, app_name: str, *flags: str) -> dict[str, Any]:
    """An endpoint whose name differs from its app name and routing key, so only the name finds it."""
    return cli.json("endpoint", "create", "--name", name, "--app-name", app_name, "--container-command", CMD, *flags)


def _db(server: Server, sql: str, *args: object) -> None:
    with sqlite3.connect(server.data_dir / "podium.db") as conn:
        conn.execute(sql, args)


def test_every_endpoint_command_takes_the_name(cli: Cli) -> None:
    ep = _create(cli, "my-chatbot", "bot-app")
    eid = ep["id"]
    assert ep["routing_key"] != "my-chatbot" and ep["app_name"] != "my-chatbot"
    assert cli.json("endpoint", "get", "my-chatbot")["id"] == eid
    assert cli.json("endpoint", "get", "--id", "my-chatbot")["id"] == eid
    assert cli.json("endpoint", "update", "my-chatbot", "--max-replicas", "2")["spec"]["scaling"]["max_replicas"] == 2
    assert cli("endpoint", "wait", "my-chatbot", "--for", "provisioning", "--timeout", "5").stdout == "provisioning\n"
    assert cli.json("endpoint", "stop", "my-chatbot")["status"]["state"] == "stopped"
    assert cli.json("endpoint", "start", "--id", "my-chatbot")["enabled"] is True
    assert cli.json("endpoint", "events", "my-chatbot")["events"][0]["kind"] == "started"
    assert cli("endpoint", "logs", "my-chatbot").exit_code == 0
    assert cli("usage", "--endpoint", "my-chatbot").exit_code == 0  # the API alone answers 404 for a name
    # ids, app names and routing keys keep working
    for key in (eid, ep["app_name"], ep["routing_key"]):
        assert cli.json("endpoint", "get", key)["id"] == eid
    assert cli("endpoint", "delete", "my-chatbot").stdout.strip() == f"deleting {eid}"


def test_an_ambiguous_name_lists_the_ids(cli: Cli) -> None:
    a = _create(cli, "twin", "twin-a")
    b = _create(cli, "twin", "twin-b")
    for args in (["get", "twin"], ["delete", "twin"], ["stop", "--id", "twin"], ["logs", "twin"]):
        res = cli("endpoint", *args, ok=False)
        assert res.exit_code == 1, args
        assert "2 endpoints match 'twin'" in res.stderr and a["id"] in res.stderr and b["id"] in res.stderr
    assert len(cli.json("endpoint", "list")["endpoints"]) == 2  # nothing was deleted or stopped
    assert cli.json("endpoint", "get", "twin-b")["id"] == b["id"]  # a unique key still picks one
    # one endpoint's app name that is another's name is just as ambiguous; ids always pick one
    c = _create(cli, "pair-one", "pair")
    d = _create(cli, "pair", "pair-two")
    res = cli("endpoint", "get", "pair", ok=False)
    assert res.exit_code == 1 and c["id"] in res.stderr and d["id"] in res.stderr
    assert cli.json("endpoint", "get", d["id"])["id"] == d["id"]
    missing = cli("endpoint", "get", "no-such-name", ok=False)
    assert missing.exit_code == 1 and "404" in missing.stderr


def test_wait_rejects_states_that_do_not_exist(cli: Cli) -> None:
    _create(cli, "w", "w-app")
    res = cli("endpoint", "wait", "w-app", "--for", "ready", "--timeout", "3", ok=False)
    assert res.exit_code == 2
    assert "'ready' is not an endpoint state" in res.stderr and "serving" in res.stderr and "idle" in res.stderr


def test_wait_shows_progress_on_stderr_and_the_state_on_stdout(cli: Cli) -> None:
    _create(cli, "w", "w-app")
    res = cli("endpoint", "wait", "w-app", "--for", "provisioning", "--timeout", "5")
    assert res.stdout == "provisioning\n"
    assert "waiting up to 5s for ep-" in res.stderr
    assert re.search(r"\d+\.\ds  provisioning +0/1 ready", res.stderr), res.stderr


def test_wait_for_serving_on_an_idle_scale_to_zero_endpoint_fails_fast(cli: Cli, server: Server) -> None:
    ep = _create(cli, "lazy", "lazy-app", "--min-replicas", "0")
    _db(server, "UPDATE endpoints SET state = 'idle' WHERE id = ?", ep["id"])  # as the controller sets it
    began = time.monotonic()
    res = cli("endpoint", "wait", "lazy-app", "--for", "serving", "--timeout", "30", ok=False)
    assert res.exit_code == 1 and time.monotonic() - began < 10
    assert "cannot end on its own" in res.stderr and "min_replicas 0" in res.stderr
    assert f"podium endpoint update {ep['id']} --min-replicas 1" in res.stderr and "/e/lazy-app/" in res.stderr
    assert res.stdout == ""


def test_wait_for_serving_on_a_stopped_endpoint_says_how_to_start_it(cli: Cli) -> None:
    ep = _create(cli, "off", "off-app")
    cli("endpoint", "stop", "off-app")
    res = cli("endpoint", "wait", "off-app", "--timeout", "30", ok=False)
    assert res.exit_code == 1 and f"podium endpoint start {ep['id']}" in res.stderr


def test_a_401_names_the_variables_to_set(cli: Cli) -> None:
    res = cli.runner.invoke(
        cli_app, ["endpoint", "list"], env={"PODIUM_URL": cli.server.url, "PODIUM_API_TOKEN": "not-a-token"}
    )
    assert res.exit_code == 1 and "401" in res.stderr
    assert "PODIUM_API_TOKEN" in res.stderr and "admin_token" in res.stderr
    assert f"PODIUM_URL to your Podium (now {cli.server.url})" in res.stderr


def test_empty_lists_say_so_and_json_keeps_its_shape(cli: Cli) -> None:
    for noun, plural in (("endpoint", "endpoints"), ("secret", "secrets"), ("volume", "volumes")):
        assert cli(noun, "list").stdout.startswith(f"no {plural}"), noun
        assert cli.json(noun, "list") == {plural: []}
    assert cli("template", "list", "--gpu-type", "no-such-gpu").stdout.strip() == "no templates"


def test_multi_line_events_keep_the_columns(cli: Cli, server: Server) -> None:
    ep = _create(cli, "noisy", "noisy-app")
    message = "replica exited with 3; its last output:\nTraceback (most recent call last):\nValueError: boom"
    _db(
        server,
        "INSERT INTO events (endpoint_id, at, kind, message) VALUES (?, ?, ?, ?)",
        ep["id"],
        time.time() + 1,
        "replica_failed",
        message,
    )
    lines = cli("endpoint", "events", "noisy-app").stdout.splitlines()
    column = lines[0].index("MESSAGE")
    first = next(i for i, line in enumerate(lines) if "replica_failed" in line)
    assert lines[first][column:] == "replica exited with 3; its last output:"
    assert lines[first + 1] == " " * column + "Traceback (most recent call last):"
    assert lines[first + 2] == " " * column + "ValueError: boom"
    assert re.match(r"\d\d:\d\d:\d\d +created", lines[first + 3])  # the next event is a row of its own
    assert cli.json("endpoint", "events", "noisy-app")["events"][0]["message"] == message


def test_help_keeps_flag_names_whole_at_80_columns(cli: Cli) -> None:
    for path in (["endpoint", "create"], ["endpoint", "update"], ["endpoint", "logs"], ["secret", "create"]):
        res = cli.runner.invoke(cli_app, [*path, "--help"], env={"COLUMNS": "80"})
        assert res.exit_code == 0, res.output
        assert max(len(line) for line in res.stdout.splitlines()) <= 80, path
        broken = [line for line in res.stdout.splitlines() if re.search(r"\w-$", line)]
        assert broken == [], f"a hyphenated word (e.g. --container-port) was split: {broken}"
        name_columns = [
            re.split(r"\s{2,}", line.strip())[0] for line in res.stdout.splitlines() if line.startswith("  -")
        ]
        shown = {flag for names in name_columns for flag in re.findall(r"--[\w-]+(?![\w…-])", names)}
        for opt in _long_options(path):
            assert opt in shown, (path, opt)


def _long_options(path: list[str]) -> list[str]:
    """Every `--flag` the command declares, from the click command Typer builds."""
    cmd: Any = typer.main.get_command(cli_app)
    ctx = click.Context(cmd)
    for name in path:
        cmd = cmd.get_command(ctx, name)
    return [o for p in cmd.params for o in p.opts if o.startswith("--")]

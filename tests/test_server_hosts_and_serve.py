"""Which host names the server answers and the security headers on every answer; `colorit serve`: the
names and addresses it answers and the bad settings it refuses before starting."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys

import httpx
import pytest
from conftest import REPO
from fastapi.testclient import TestClient
from server_helpers import assert_error, free_port, post_image, wait_for

from colorit.cli import main as cli_main
from colorit.errors import ModelNotFound
from colorit.server.app import create_app


def machine_ipv4_addresses() -> list[str]:
    import psutil

    return [
        entry.address
        for entries in psutil.net_if_addrs().values()
        for entry in entries
        if entry.family == socket.AF_INET
    ]


def server_answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def test_every_answer_carries_security_headers(client, grey_png):
    for response in (
        client.get("/"),
        client.get("/api/models"),
        post_image(client, b"not an image"),
        client.get("/healthz", headers={"Host": "evil.example"}),
    ):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


def test_only_allowed_host_names_are_answered():
    """A web page that rebinds its own name to 127.0.0.1 sends its own name as Host: refused, in the
    API's JSON error form (issue 21: it was plain text) that says how to allow a name."""
    with TestClient(create_app(), base_url="http://localhost:8000") as local:
        assert local.get("/healthz").status_code == 200
        refused = local.get("/healthz", headers={"Host": "rebind.attacker.example"})
        assert_error(refused, 400, "invalid_host", "rebind.attacker.example", "--allowed-host")
        assert local.get("/healthz", headers={"Host": "127.0.0.1:8000"}).status_code == 200
        assert_error(local.get("/healthz", headers={"Host": "[::1"}), 400, "invalid_host", "[::1")
    with TestClient(create_app(allowed_hosts=["photos.lan", "*.home.arpa"]), base_url="http://photos.lan") as named:
        assert named.get("/healthz").status_code == 200
        assert named.get("/healthz", headers={"Host": "Box.Home.Arpa:8000"}).status_code == 200
        assert named.get("/healthz", headers={"Host": "home.arpa.evil.example"}).status_code == 400
        assert named.get("/healthz", headers={"Host": "localhost"}).status_code == 400


@pytest.mark.parametrize(
    ("host", "extra", "names"),
    [
        ("127.0.0.1", [], ["localhost", "127.0.0.1"]),
        ("192.168.1.20", [], ["localhost", "127.0.0.1", "192.168.1.20"]),
        (
            "0.0.0.0",
            ["photos.lan"],
            ["localhost", "127.0.0.1", socket.gethostname(), f"{socket.gethostname()}.local", "photos.lan"],
        ),
        ("::", ["*"], ["localhost", "127.0.0.1", socket.gethostname(), f"{socket.gethostname()}.local", "*"]),
    ],
)
def test_serve_answers_local_names_its_own_names_and_those_it_is_given(host, extra, names):
    from colorit.server.hosts import names_for

    assert names_for(host, extra) == names


def test_serve_on_every_address_answers_each_address_of_the_machine():
    """Issue 21: `colorit serve --host 0.0.0.0` answered the machine's own address (as a phone opens
    it) with a plain-text "Invalid host header"."""
    port = free_port()
    environment = {**os.environ, "PYTHONPATH": str(REPO)}
    server = subprocess.Popen(
        [sys.executable, "-m", "colorit", "serve", "--host", "0.0.0.0", "--port", str(port)],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=environment,
    )
    try:
        start_line = server.stderr.readline()
        listed = re.findall(r"http://([\d.]+):(\d+)/", start_line)
        assert "--allowed-host" in start_line, start_line
        assert {address for address, _ in listed} == set(machine_ipv4_addresses()), start_line
        assert {int(listed_port) for _, listed_port in listed} == {port}
        wait_for(lambda: server_answers(f"http://127.0.0.1:{port}/healthz"), "the server to start")
        # 127.0.0.2 is one of the machine's addresses too (all of 127/8 is), though no interface lists it
        for address in [*machine_ipv4_addresses(), "127.0.0.2"]:
            response = httpx.get(f"http://{address}:{port}/healthz", timeout=30)
            assert response.status_code == 200, (address, response.text)
        refused = httpx.get(f"http://127.0.0.1:{port}/healthz", headers={"Host": "rebind.example"}, timeout=30)
        assert_error(refused, 400, "invalid_host", "rebind.example", "--allowed-host rebind.example")
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_serve_refuses_bad_settings_before_starting(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["serve", "--workers", "0"])
    assert exit_info.value.code == 2
    assert cli_main(["serve", "--model", "no-such-model"]) == 1
    assert "no-such-model" in capsys.readouterr().err
    with pytest.raises(ModelNotFound):
        create_app(model="no-such-model")

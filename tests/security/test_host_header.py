"""Attack: DNS rebinding on the car's web server (issue 12, item 2).

The car serves the owner's phone app (``/``), its API (``/api/v1``, with a WebSocket stream) and the cabin's centre
screen (``/cabin/``, with an API that needs no token: it is meant for the screen in the car) on HTTP. A web page at
``http://attacker.example:H`` that a browser on the car's network (or on the car itself) opens can rebind
``attacker.example`` to 127.0.0.1 (or the car's address): the browser then sends the page's requests to the car, as
the same origin as the page, so the page reads the answers. Its requests carry ``Host: attacker.example:H`` (and, for
a WebSocket or a POST, ``Origin: http://attacker.example:H``, which matches the Host, so an Origin-equals-Host check
lets them through); same-origin GETs carry no Origin at all.

A fixed car refuses every request whose Host is not one of its own names (127.0.0.1, localhost, the address it
serves on), before anything else (routing, authentication): 400 or 421 (403 accepted too), and the WebSocket handshake
is not accepted; the same requests with ``Host: 127.0.0.1:H`` or ``Host: localhost:H`` are served as before.

One car (``evos up`` with the twin, body, cabin and companion apps) serves the whole module on 127.0.0.1; the
requests are raw HTTP (``http.client``, a socket for the WebSocket handshake) so the test controls the Host header.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import socket
import subprocess
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from helpers import free_port, start, stop, wait_listening

APPS = "twin,body,cabin,companion"
OWNER, PASSWORD = "owner", "a long enough password"
MALLORY, MALLORY_PASSWORD = "mallory", "mallory's password"
REFUSED = (400, 421, 403)
STREAM = "/api/v1/vehicle/stream"  # the companion's WebSocket (the phone app opens it; see /app.js)


@dataclass
class Answer:
    status: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def request(port: int, method: str, path: str, host: str, *, origin: str | None = None,
            headers: dict[str, str] | None = None, body: bytes | None = None) -> Answer:
    """One raw HTTP/1.1 request to 127.0.0.1:port with exactly this Host header."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        connection.putheader("Host", host)
        if origin is not None:
            connection.putheader("Origin", origin)
        for name, value in (headers or {}).items():
            connection.putheader(name, value)
        if body is not None:
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        return Answer(response.status, response.read())
    finally:
        connection.close()


def post_json(port: int, path: str, host: str, payload: object, origin: str | None = None) -> Answer:
    return request(port, "POST", path, host, origin=origin, headers={"Content-Type": "application/json"},
                   body=json.dumps(payload).encode())


def post_form(port: int, path: str, host: str, form: dict[str, str], origin: str | None = None) -> Answer:
    return request(port, "POST", path, host, origin=origin,
                   headers={"Content-Type": "application/x-www-form-urlencoded"},
                   body=urllib.parse.urlencode(form).encode())


@dataclass
class Handshake:
    status: int
    head: str
    first_frame: tuple[int, bytes] | None  # (opcode, payload) of the first frame after a 101


def _read_exactly(sock: socket.socket, buffer: bytearray, n: int) -> bytes:
    while len(buffer) < n:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection mid-frame")
        buffer += chunk
    data = bytes(buffer[:n])
    del buffer[:n]
    return data


def websocket_handshake(port: int, path: str, host: str, origin: str) -> Handshake:
    """A raw WebSocket opening handshake (RFC 6455) with this Host and Origin; after a 101, the first frame."""
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}", "Upgrade: websocket", "Connection: Upgrade",
             f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13", f"Origin: {origin}"]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        buffer = bytearray()
        while b"\r\n\r\n" not in buffer:
            chunk = sock.recv(65536)
            if not chunk:
                break
            buffer += chunk
        head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1]) if head else 0
        if status != 101:
            return Handshake(status, head.decode(errors="replace"), None)
        buffer = bytearray(rest)
        first, second = _read_exactly(sock, buffer, 2)
        length = second & 0x7F
        if length == 126:
            length = int.from_bytes(_read_exactly(sock, buffer, 2), "big")
        elif length == 127:
            length = int.from_bytes(_read_exactly(sock, buffer, 8), "big")
        payload = _read_exactly(sock, buffer, length)
        return Handshake(status, head.decode(errors="replace"), (first & 0x0F, payload))


# --- the car --------------------------------------------------------------------------------------------------


@dataclass
class Car:
    port: int
    token: str  # the owner's access token (signed in from 127.0.0.1)
    owner: str
    password: str
    claim: Answer  # the rebinding page's attempt to create the owner's account on the car's first run
    needs_owner_after_claim: bool


def _wait_http(proc: subprocess.Popen[str], port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail("the car exited before its web server came up")
        try:
            if request(port, "GET", "/api/v1/setup", f"127.0.0.1:{port}").status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    pytest.fail(f"the car's web server did not come up on 127.0.0.1:{port}")


@pytest.fixture(scope="module")
def car(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Car]:
    data_dir: Path = tmp_path_factory.mktemp("car")
    address, port = f"127.0.0.1:{free_port()}", free_port()
    proc = start("up", "--address", address, "--http", f"127.0.0.1:{port}", "--data-dir", str(data_dir),
                 "--apps", APPS)
    try:
        wait_listening(proc, address)
        _wait_http(proc, port)
        good = f"127.0.0.1:{port}"
        assert request(port, "GET", "/api/v1/setup", good).json() == {"needs_owner": True}
        # before anyone has set the car up, a rebinding page tries to make itself its owner
        evil = f"attacker.example:{port}"
        claim = post_json(port, "/api/v1/setup", evil, {"name": MALLORY, "password": MALLORY_PASSWORD},
                          origin=f"http://{evil}")
        needs_owner = request(port, "GET", "/api/v1/setup", good).json() == {"needs_owner": True}
        if needs_owner:
            created = post_json(port, "/api/v1/setup", good, {"name": OWNER, "password": PASSWORD})
            assert created.status == 201, created.body
        # (if the page did claim the car, the other tests go on with its account: they test the Host check alone)
        name, password = (OWNER, PASSWORD) if needs_owner else (MALLORY, MALLORY_PASSWORD)
        signed_in = post_form(port, "/api/v1/oauth/token", good,
                              {"grant_type": "password", "username": name, "password": password})
        token = signed_in.json()["access_token"] if signed_in.status == 200 else ""
        yield Car(port, token, name, password, claim, needs_owner)
    except BaseException:
        proc.kill()
        proc.communicate(timeout=15)
        raise
    stop(proc)


def attacker_hosts(port: int) -> dict[str, str]:
    return {"attacker": f"attacker.example:{port}", "attacker, no port": "attacker.example",
            "127.0.0.1 prefix": f"127.0.0.1.attacker.example:{port}",
            "localhost prefix": f"localhost.attacker.example:{port}"}


HOSTS = ["attacker", "attacker, no port", "127.0.0.1 prefix", "localhost prefix"]
PAGES = ["/", "/cabin/", "/cabin/api/state", "/api/v1/vehicle/state"]


def good_hosts(port: int) -> list[str]:
    return [f"127.0.0.1:{port}", f"localhost:{port}"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# --- the attack -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("with_origin", [False, True], ids=["same-origin GET (no Origin)", "with Origin"])
@pytest.mark.parametrize("host_kind", HOSTS)
@pytest.mark.parametrize("path", PAGES)
def test_a_foreign_host_is_refused(car: Car, path: str, host_kind: str, with_origin: bool) -> None:
    host = attacker_hosts(car.port)[host_kind]
    answer = request(car.port, "GET", path, host, origin=f"http://{host}" if with_origin else None)
    assert answer.status in REFUSED, f"GET {path} with Host: {host} was answered {answer.status} " \
        f"(not refused for its Host): {answer.body[:200]!r}"


def test_the_companion_api_refuses_a_foreign_host_before_authentication(car: Car) -> None:
    """Not a 401 for the missing token (the Host is refused first), and refused even with a valid token."""
    assert car.token, "the owner could not sign in from 127.0.0.1"
    evil = f"attacker.example:{car.port}"
    for headers in ({}, bearer(car.token)):
        answer = request(car.port, "GET", "/api/v1/vehicle/state", evil, origin=f"http://{evil}", headers=headers)
        assert answer.status in REFUSED, f"/api/v1/vehicle/state with Host: {evil}: {answer.status} {answer.body!r}"
    # the page cannot try the owner's password either
    signed_in = post_form(car.port, "/api/v1/oauth/token", evil,
                          {"grant_type": "password", "username": car.owner, "password": car.password},
                          origin=f"http://{evil}")
    assert signed_in.status in REFUSED, f"oauth/token with Host: {evil}: {signed_in.status} {signed_in.body[:200]!r}"


def test_a_rebinding_page_cannot_claim_a_new_car(car: Car) -> None:
    assert car.claim.status in REFUSED, f"POST /api/v1/setup with a foreign Host: {car.claim.status} " \
        f"{car.claim.body[:200]!r}"
    assert car.needs_owner_after_claim, "the rebinding page created the car's owner account"


@pytest.mark.parametrize("host_kind", HOSTS)
def test_the_websocket_handshake_with_a_foreign_host_is_refused(car: Car, host_kind: str) -> None:
    assert car.token, "the owner could not sign in from 127.0.0.1"
    host = attacker_hosts(car.port)[host_kind]
    handshake = websocket_handshake(car.port, f"{STREAM}?access_token={car.token}", host, f"http://{host}")
    detail = (f"the stream's state was sent: {handshake.first_frame[1][:120]!r}" if handshake.first_frame
              and handshake.first_frame[0] == 1 else f"first frame {handshake.first_frame}")
    assert handshake.status != 101, f"the WebSocket handshake with Host: {host} was accepted (101); {detail}"
    assert handshake.status in REFUSED, f"WebSocket handshake with Host: {host}: {handshake.head}"


# --- the car's own names still work ---------------------------------------------------------------------------


def test_the_cars_own_names_are_served(car: Car) -> None:
    assert car.token, "the owner could not sign in from 127.0.0.1"
    for host in good_hosts(car.port):
        origin = f"http://{host}"
        page = request(car.port, "GET", "/", host)
        assert page.status == 200 and b"<html" in page.body, (host, page.status)
        assert b"/vehicle/stream" in request(car.port, "GET", "/app.js", host).body  # the stream the page opens
        screen = request(car.port, "GET", "/cabin/", host)
        assert screen.status == 200 and b"<html" in screen.body, (host, screen.status)
        state = request(car.port, "GET", "/cabin/api/state", host, origin=origin)
        assert state.status == 200 and "Vehicle.Speed" in state.json(), (host, state.status, state.body[:200])
        assert request(car.port, "GET", "/api/v1/vehicle/state", host).status == 401  # no token: the usual 401
        vehicle = request(car.port, "GET", "/api/v1/vehicle/state", host, origin=origin, headers=bearer(car.token))
        assert vehicle.status == 200, (host, vehicle.status, vehicle.body[:200])
        assert "battery" in vehicle.json()["groups"]
        handshake = websocket_handshake(car.port, f"{STREAM}?access_token={car.token}", host, origin)
        assert handshake.status == 101, (host, handshake.head)
        assert handshake.first_frame is not None and handshake.first_frame[0] == 1, (host, handshake.first_frame)
        assert json.loads(handshake.first_frame[1])["type"] == "state"

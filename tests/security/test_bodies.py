"""One body-size limit on every route of the car's web server, counted as the bytes stream in (issue 12, item
11): four unauthenticated chunked 250 MiB bodies once took the car from 212 to 1,928 MiB, and chunked encoding
went around the centre screen's 64 KiB limit, which read Content-Length only."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest

from helpers import free_port, start, stop, wait_listening

LIMIT = 64 * 1024
# (route, content type): routes that read a body, each as its client sends it
READERS = [("/api/v1/setup", "application/json"), ("/api/v1/oauth/token", "application/x-www-form-urlencoded"),
           ("/cabin/api/actuate", "application/json"), ("/cabin/api/assistant", "application/json")]
ROUTES = [*READERS, ("/api/v1/nothing", "application/json")]  # and one that does not


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    address, http = f"127.0.0.1:{free_port()}", free_port()
    proc = start("up", "--apps", "twin,cabin,companion", "--address", address, "--http", f"127.0.0.1:{http}",
                 "--data-dir", str(tmp_path_factory.mktemp("car")))
    try:
        wait_listening(proc, address)
        yield "127.0.0.1", http
    finally:
        stop(proc)


def send(web: tuple[str, int], head: str, chunks: Iterator[bytes]) -> tuple[int, dict[str, object]]:
    """Send a request head and its body, as far as the server reads it; the status and JSON of its answer."""
    with socket.create_connection(web, timeout=20) as sock:
        sock.sendall(head.encode())
        try:
            for chunk in chunks:
                sock.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):  # the server answered and closed: it read no more
            pass
        answer = b""
        while b"\r\n\r\n" not in answer or len(answer.split(b"\r\n\r\n", 1)[1]) < _length(answer):
            data = sock.recv(65536)
            if not data:
                break
            answer += data
    status_line, _, rest = answer.partition(b"\r\n")
    body = rest.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in rest else b""
    return int(status_line.split()[1]), json.loads(body[:_length(answer)] or b"{}")


def _length(answer: bytes) -> int:
    for line in answer.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":", 1)[1])
    return 0


def chunked(total_bytes: int, chunk_bytes: int = 16 * 1024) -> Iterator[bytes]:
    sent = 0
    while sent < total_bytes:
        yield f"{chunk_bytes:x}\r\n".encode() + b"x" * chunk_bytes + b"\r\n"
        sent += chunk_bytes
    yield b"0\r\n\r\n"


@pytest.mark.parametrize(("route", "content_type"), READERS)
def test_a_chunked_body_over_the_limit_is_refused(web: tuple[str, int], route: str, content_type: str) -> None:
    head = (f"POST {route} HTTP/1.1\r\nHost: 127.0.0.1:{web[1]}\r\nContent-Type: {content_type}\r\n"
            "Transfer-Encoding: chunked\r\n\r\n")
    status, answer = send(web, head, chunked(8 * 1024 * 1024))  # 8 MiB: the server must stop reading long before
    assert status == 413, (status, answer)
    assert f"at most {LIMIT:,} bytes" in str(answer.get("detail")), answer


@pytest.mark.parametrize(("route", "content_type"), ROUTES)
def test_a_declared_length_over_the_limit_is_refused_before_the_body(web: tuple[str, int], route: str,
                                                                   content_type: str) -> None:
    head = (f"POST {route} HTTP/1.1\r\nHost: 127.0.0.1:{web[1]}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {250 * 1024 * 1024}\r\n\r\n")
    status, answer = send(web, head, iter([b"{}"]))
    assert status == 413 and f"at most {LIMIT:,} bytes" in str(answer.get("detail")), (status, answer)


def test_a_small_chunked_body_still_gets_through(web: tuple[str, int]) -> None:
    body = json.dumps({"Vehicle.Evos.Cabin.Screen.Message": "hello"}).encode()
    head = (f"POST /cabin/api/actuate HTTP/1.1\r\nHost: 127.0.0.1:{web[1]}\r\nContent-Type: application/json\r\n"
            "Transfer-Encoding: chunked\r\n\r\n")
    status, answer = send(web, head, iter([f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n"]))
    assert status == 200, (status, answer)


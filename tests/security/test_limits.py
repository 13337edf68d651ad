"""Values an attacker would send to make the car read, open or fetch what it should not (issue 12, item 5): a
hand-over URI pointing at the car's files, its devices, ffmpeg's protocols or its network; a string value too
large for every reader to carry."""

from __future__ import annotations

import pytest

from evos.cabin._media import check_phone_uri
from evos.errors import InvalidArgumentError, InvalidValueError
from evos.vss import MAX_STRING_CHARS, load_catalog, validate

ATTACKS = [
    " file:///etc/passwd",  # a leading space once slipped past a prefix check
    "/etc/passwd",
    "file:///etc/passwd",
    "FILE:///etc/shadow",
    "concat:/etc/passwd|/etc/hosts",
    "pipe:0",
    "http://169.254.169.254/latest/meta-data/",  # a cloud's metadata service
    "https://169.254.169.254/latest/meta-data/",
    "https://127.0.0.1:55555/",
    "https://[::1]/",
    "https://10.0.0.7/stream",
    "https://192.168.1.1/",
    "https://localhost/",
    "https://router.local/",
    "https://user:secret@example.com/track.mp3",
    "spotify:track:../../etc",
    "spotify:track:a b",
    "javascript:alert(1)",
    "data:audio/wav;base64,AAAA",
    "https://example.com/\x00.mp3",
]


@pytest.mark.parametrize("uri", ATTACKS)
def test_a_phone_cannot_point_the_player_at_the_car_or_its_network(uri: str) -> None:
    with pytest.raises(InvalidArgumentError, match="handover URI"):
        check_phone_uri(uri)


@pytest.mark.parametrize("uri", ["spotify:track:4uLU6hMCjMI75M1A2tKUQC", "deezer:track:3135556",
                                 "https://radio.example.com/live.mp3"])
def test_what_a_phone_hands_over_still_plays(uri: str) -> None:
    check_phone_uri(uri)


def test_a_huge_string_value_is_refused_naming_the_limit() -> None:
    model = load_catalog().get("Vehicle.VehicleIdentification.Model")
    assert validate(model, "x" * MAX_STRING_CHARS) == "x" * MAX_STRING_CHARS
    with pytest.raises(InvalidValueError, match=f"longer than the limit of {MAX_STRING_CHARS:,} characters"):
        validate(model, "x" * 10_000_000)

"""Tiny tagged audio files written by the tests (nothing large is committed)."""

from __future__ import annotations

import struct
import wave
from pathlib import Path


def _info_chunk(tags: dict[bytes, str]) -> bytes:
    body = b"INFO"
    for key, text in tags.items():
        data = text.encode() + b"\0"
        if len(data) % 2:
            data += b"\0"
        body += key + struct.pack("<I", len(data)) + data
    return b"LIST" + struct.pack("<I", len(body)) + body


def write_wav(path: Path, seconds: float, title: str, artist: str, album: str, rate_hz: int = 8000) -> Path:
    """A silent mono 8-bit WAV of ``seconds`` with RIFF INFO tags (title INAM, artist IART, album IPRD)."""
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(1)
        out.setframerate(rate_hz)
        out.writeframes(b"\x80" * int(seconds * rate_hz))
    raw = path.read_bytes() + _info_chunk({b"INAM": title, b"IART": artist, b"IPRD": album})
    path.write_bytes(raw[:4] + struct.pack("<I", len(raw) - 8) + raw[8:])
    return path


def make_library(root: Path) -> list[Path]:
    root.mkdir(parents=True, exist_ok=True)
    files = [
        write_wav(root / "01-dawn.wav", 2.0, "Dawn", "Ada Quartet", "Mornings"),
        write_wav(root / "02-road.wav", 3.0, "Open Road", "Ada Quartet", "Mornings"),
        write_wav(root / "03-night.wav", 1.5, "Night Drive", "Bo Lin", "City"),
    ]
    (root / "chill.m3u").write_text("#EXTM3U\n03-night.wav\n01-dawn.wav\nmissing.wav\n")
    return files

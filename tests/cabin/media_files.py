"""Tiny tagged audio and video files written by the tests (nothing large is committed)."""

from __future__ import annotations

import struct
import wave
from pathlib import Path

import av
import numpy as np


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


def write_video(path: Path, seconds: float, title: str, codec: str = "mpeg4", width_px: int = 64,
                height_px: int = 48, rate_hz: int = 10) -> Path:
    """A real video of ``seconds`` (frames of changing grey, encoded with PyAV) with a container title tag."""
    with av.open(str(path), "w") as out:
        out.metadata["title"] = title
        stream = out.add_stream(codec, rate=rate_hz)
        stream.width, stream.height, stream.pix_fmt = width_px, height_px, "yuv420p"
        for i in range(round(seconds * rate_hz)):
            frame = av.VideoFrame.from_ndarray(np.full((height_px, width_px, 3), i * 20 % 256, np.uint8),
                                               format="rgb24")
            out.mux(stream.encode(frame))
        out.mux(stream.encode())  # flush the encoder
    return path


def write_sound_only(path: Path, seconds: float, title: str, rate_hz: int = 48000) -> Path:
    """A container of a video suffix that carries sound only (silent Opus in WebM), with a title tag."""
    with av.open(str(path), "w") as out:
        out.metadata["title"] = title
        stream = out.add_stream("libopus", rate=rate_hz)
        samples = 960  # one 20 ms Opus frame
        for i in range(round(seconds * rate_hz / samples)):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, samples), np.int16), format="s16", layout="mono")
            frame.sample_rate, frame.pts = rate_hz, i * samples
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    return path


def make_videos(root: Path) -> list[Path]:
    """Two films next to the audio library (sorted after its tracks) and a playlist mixing both kinds."""
    root.mkdir(parents=True, exist_ok=True)
    files = [
        write_video(root / "04-harbour.mp4", 1.0, "Harbour Lights", "mpeg4", 64, 48, 10),
        write_video(root / "05-tunnel.webm", 1.2, "Tunnel", "libvpx-vp9", 80, 60, 25),
    ]
    (root / "mixed.m3u").write_text("04-harbour.mp4\n01-dawn.wav\n05-tunnel.webm\n")
    return files

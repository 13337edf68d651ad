"""The media service: a library of local audio and video files, playlists and a player, as VSS signals.

``MediaLibrary`` scans a folder (audio tags read with tinytag, video files with PyAV, FFmpeg's libraries);
``Player`` is the pure player state (queue, position, play/pause, volume, rate, source) advanced by
``advance(dt_s)``; ``MediaService`` (the media app) serves ``Vehicle.Cabin.Infotainment.Media.*`` and the phone's
hand-over (``Vehicle.Evos.Cabin.Media.Handover``) on the vehicle-data port, and publishes what is played and what
it draws (``Vehicle.Evos.Cabin.MediaLoadPower``). The service keeps the player's clock and state; sound and
picture belong to the head unit's audio and video stack, which plays ``Played.URI`` from
``Vehicle.Evos.Cabin.Media.Position``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import math
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse, urlsplit

import av
from av.error import FFmpegError
from av.stream import Disposition
from tinytag import TinyTag, TinyTagException

from evos.app import App, AppEnv, Grants, paths_in
from evos.broker import Mirror, VehiclePort
from evos.cabin._forecast import BRIGHTNESS, media_load_w
from evos.cabin._service import OVERLAY
from evos.errors import InvalidArgumentError
from evos.twin import TWIN_OVERLAY
from evos.vss import Value

log = logging.getLogger("evos.cabin.media")

MEDIA = "Vehicle.Cabin.Infotainment.Media"
EVOS_MEDIA = "Vehicle.Evos.Cabin.Media"
ACTION, VOLUME, SELECTED = f"{MEDIA}.Action", f"{MEDIA}.Volume", f"{MEDIA}.SelectedURI"
RATE, SOURCE = f"{MEDIA}.Played.PlaybackRate", f"{MEDIA}.Played.Source"
POSITION, PLAYLIST, DURATION = f"{EVOS_MEDIA}.Position", f"{EVOS_MEDIA}.Playlist", f"{EVOS_MEDIA}.Duration"
KIND, RESOLUTION = f"{EVOS_MEDIA}.Kind", f"{EVOS_MEDIA}.VideoResolution"
FRAME_RATE, CODEC = f"{EVOS_MEDIA}.VideoFrameRate", f"{EVOS_MEDIA}.VideoCodec"
HANDOVER = f"{EVOS_MEDIA}.Handover"
# Music services whose track URIs a phone may hand over (opaque: scheme, kind, id; the services' share format)
SERVICE_SCHEMES = ("spotify", "deezer", "tidal", "qobuz", "soundcloud", "applemusic")
_SERVICE_TRACK = re.compile(r"[a-z]+:[A-Za-z0-9:._-]{1,256}")
MEDIA_LOAD = "Vehicle.Evos.Cabin.MediaLoadPower"
ACTUATORS = (ACTION, VOLUME, SELECTED, RATE, SOURCE, POSITION, PLAYLIST)
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".opus", ".mp3", ".m4a", ".aac", ".wma", ".aiff")
VIDEO_SUFFIXES = (".mp4", ".m4v", ".mkv", ".webm", ".mov", ".avi", ".mpg", ".mpeg", ".ts", ".wmv", ".ogv")
AUDIO, VIDEO = "AUDIO", "VIDEO"  # a track's kind (Vehicle.Evos.Cabin.Media.Kind)
ALL = "all"  # the playlist of every track in the library
BUILT_IN = {ALL: None, "audio": AUDIO, "video": VIDEO}  # built-in playlists: every track, or every one of a kind
SEEK_STEP_S = 10.0  # FAST_FORWARD / FAST_BACKWARD jump
RESTART_AFTER_S = 3.0  # SKIP_BACKWARD later than this into a track restarts it (as most players do)


@dataclass(frozen=True)
class Track:
    uri: str
    title: str
    artist: str = ""
    album: str = ""
    genre: str = ""
    duration_s: float = 0.0
    kind: str = AUDIO
    width_px: int = 0  # the picture of a video; 0 for audio
    height_px: int = 0
    frame_rate_hz: float = 0.0
    video_codec: str = ""  # FFmpeg's codec name: h264, hevc, vp9, av1, mpeg4, ...

    @property
    def resolution(self) -> str:
        """``"1920x1080"`` for a video, ``""`` for audio."""
        return f"{self.width_px}x{self.height_px}" if self.kind == VIDEO else ""


def read_track(path: Path) -> Track:
    """A Track from a file's tags (title falls back to the file name): audio suffixes with tinytag (pure Python,
    about 7x faster than opening the file with FFmpeg), video suffixes with PyAV. Raises InvalidArgumentError."""
    if path.suffix.lower() in VIDEO_SUFFIXES:
        return _read_video(path)
    try:
        tag = TinyTag.get(path)
    except (TinyTagException, OSError) as exc:
        raise InvalidArgumentError(f"{path}: not a readable audio file: {exc}") from exc
    return Track(uri=path.resolve().as_uri(), title=tag.title or path.stem, artist=tag.artist or "",
                 album=tag.album or "", genre=tag.genre or "", duration_s=float(tag.duration or 0.0))


def _read_video(path: Path) -> Track:
    """A Track from a video container's header: duration, tags, and its first video stream's picture (a
    container with sound only, such as an audio ``.webm``, is an AUDIO track). Raises InvalidArgumentError."""
    try:
        with av.open(str(path)) as container:
            # tag keys differ in case between containers (MP4 "artist", Matroska "ARTIST")
            tags = {key.lower(): value for key, value in container.metadata.items()}
            duration_s = container.duration / av.time_base if container.duration else 0.0
            video = next((s for s in container.streams.video if not s.disposition & Disposition.attached_pic), None)
            if video is None and not container.streams.audio:
                raise InvalidArgumentError(f"{path}: not a readable video file: it has no audio or video stream")
            track = Track(uri=path.resolve().as_uri(), title=tags.get("title") or path.stem,
                          artist=tags.get("artist") or tags.get("album_artist") or "", album=tags.get("album", ""),
                          genre=tags.get("genre", ""), duration_s=float(duration_s))
            if video is None:
                return track
            rate = video.average_rate or video.guessed_rate
            return replace(track, kind=VIDEO, width_px=video.codec_context.width,
                           height_px=video.codec_context.height, frame_rate_hz=float(rate) if rate else 0.0,
                           video_codec=video.codec_context.name)
    except (FFmpegError, OSError) as exc:
        raise InvalidArgumentError(f"{path}: not a readable video file: {exc}") from exc


class MediaLibrary:
    """Tracks under a folder (recursively) and its ``.m3u`` playlists (plus ``all``, ``audio`` and ``video``;
    a file named like one of these replaces it)."""

    def __init__(self, root: Path | None) -> None:
        self.root = root
        self.tracks: dict[str, Track] = {}
        self.playlists: dict[str, tuple[str, ...]] = {}
        self.rescan()

    def rescan(self) -> None:
        self.tracks = {}
        if self.root is not None and self.root.is_dir():
            for path in sorted(self.root.rglob("*")):
                if path.suffix.lower() in (*AUDIO_SUFFIXES, *VIDEO_SUFFIXES) and path.is_file():
                    try:
                        track = read_track(path)
                    except InvalidArgumentError as exc:
                        log.warning("media: skipping %s", exc)
                        continue
                    self.tracks[track.uri] = track
        self.playlists = {name: tuple(u for u, t in self.tracks.items() if kind in (None, t.kind))
                          for name, kind in BUILT_IN.items()}
        if self.root is not None and self.root.is_dir():
            for m3u in sorted([*self.root.glob("*.m3u"), *self.root.glob("*.m3u8")]):
                self.playlists[m3u.stem] = self._read_m3u(m3u)

    def _read_m3u(self, m3u: Path) -> tuple[str, ...]:
        uris = []
        for line in m3u.read_text("utf-8", errors="replace").splitlines():
            entry = line.strip()
            if not entry or entry.startswith("#"):
                continue
            target = Path(unquote(urlparse(entry).path)) if entry.startswith("file:") else m3u.parent / entry
            uri = target.resolve().as_uri()
            if uri in self.tracks:
                uris.append(uri)
            else:
                log.warning("media: %s lists %s, which is not in the library", m3u, entry)
        return tuple(uris)


@dataclass(frozen=True)
class Player:
    """The player's state; every method returns the next state."""

    queue: tuple[Track, ...] = ()
    index: int = 0
    position_s: float = 0.0
    playing: bool = False
    volume_pct: int = 30
    rate: float = 1.0
    source: str = "USB"
    playlist: str = ALL

    @property
    def track(self) -> Track | None:
        return self.queue[self.index] if 0 <= self.index < len(self.queue) else None

    def play(self) -> Player:
        return replace(self, playing=self.track is not None)

    def pause(self) -> Player:
        return replace(self, playing=False)

    def next(self) -> Player:
        if not self.queue:
            return self
        return replace(self, index=(self.index + 1) % len(self.queue), position_s=0.0)

    def previous(self) -> Player:
        if not self.queue:
            return self
        if self.position_s > RESTART_AFTER_S:
            return replace(self, position_s=0.0)
        return replace(self, index=(self.index - 1) % len(self.queue), position_s=0.0)

    def seek(self, position_s: float) -> Player:
        track = self.track
        if track is None:
            return self
        end = track.duration_s if track.duration_s > 0 else float("inf")
        return replace(self, position_s=min(max(position_s, 0.0), end))

    def load(self, queue: tuple[Track, ...], index: int = 0, playlist: str = ALL, source: str = "USB") -> Player:
        return replace(self, queue=queue, index=index, position_s=0.0, playlist=playlist, source=source)

    def advance(self, dt_s: float) -> Player:
        """Play on for ``dt_s`` of wall time; at a track's end go to the next (stop after the last)."""
        state = self
        remaining = dt_s * self.rate if self.playing else 0.0
        while remaining > 0 and (track := state.track) is not None and track.duration_s > 0:
            left = track.duration_s - state.position_s
            if remaining < left:
                return replace(state, position_s=state.position_s + remaining)
            remaining -= left
            if state.index + 1 >= len(state.queue):
                return replace(state, position_s=track.duration_s, playing=False)
            state = replace(state, index=state.index + 1, position_s=0.0)
        return state

    def signals(self) -> dict[str, Value]:
        track = self.track
        return {
            ACTION: "PLAY" if self.playing else "STOP",
            VOLUME: self.volume_pct,
            RATE: self.rate,
            SOURCE: self.source,
            PLAYLIST: self.playlist,
            POSITION: round(self.position_s, 3),
            DURATION: track.duration_s if track else 0.0,
            SELECTED: track.uri if track else "",
            KIND: track.kind if track else "NONE",
            RESOLUTION: track.resolution if track else "",
            FRAME_RATE: track.frame_rate_hz if track else 0.0,
            CODEC: track.video_codec if track else "",
            f"{MEDIA}.Played.URI": track.uri if track else "",
            f"{MEDIA}.Played.Track": track.title if track else "",
            f"{MEDIA}.Played.Artist": track.artist if track else "",
            f"{MEDIA}.Played.Album": track.album if track else "",
            f"{MEDIA}.Played.Genre": track.genre if track else "",
        }


def check_phone_uri(uri: str) -> None:
    """InvalidArgumentError unless ``uri`` is what a phone may hand over besides a track of the car's library: a
    music service's track URI (``spotify:track:ID``, as the services' apps share them) or an https URL of a public
    host. The head unit plays ``Played.URI``: a phone must not point it at the car itself (a file, a device,
    ffmpeg's ``pipe:`` or ``concat:``) or into its network (loopback, link-local metadata services, private hosts)."""
    def refuse(why: str) -> InvalidArgumentError:
        return InvalidArgumentError(f"handover URI {uri[:100]!r}: {why}; a phone hands over a track of the media "
                                    f"library, a music service's track ({', '.join(SERVICE_SCHEMES)}) or an https "
                                    "URL of a public host", path=HANDOVER)

    if any(ord(c) <= 32 or ord(c) == 127 for c in uri):
        raise refuse("it holds spaces or control characters")
    scheme = uri.partition(":")[0].lower()
    if scheme in SERVICE_SCHEMES:
        if _SERVICE_TRACK.fullmatch(uri) is None:
            raise refuse(f"not a {scheme} track URI")
        return
    if scheme != "https":
        raise refuse(f"the scheme {scheme!r} is not one a phone may hand over" if ":" in uri else "not a URI")
    parts = urlsplit(uri)
    host = parts.hostname or ""
    if parts.username is not None or parts.password is not None:
        raise refuse("it carries a user name or password")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        if "." not in host or host == "localhost" or host.endswith((".localhost", ".local", ".internal")):
            raise refuse(f"{host!r} is not a public host name") from None
        return
    if not address.is_global:
        raise refuse(f"{host} is not a public address")


def parse_handover(text: str) -> dict[str, Any]:
    """The fields of a hand-over request (``HANDOVER``'s JSON); InvalidArgumentError naming what is wrong."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidArgumentError(f"{HANDOVER}: not JSON: {exc}", path=HANDOVER) from None
    known = {"uri", "position_s", "title", "artist", "album", "duration_s"}
    if not isinstance(data, dict) or not isinstance(data.get("uri"), str) or set(data) - known:
        raise InvalidArgumentError(f"{HANDOVER}: expected an object with 'uri' and any of {sorted(known)}",
                                   path=HANDOVER)
    for key in ("position_s", "duration_s"):
        if not isinstance(data.get(key, 0.0), int | float) or isinstance(data.get(key), bool):
            raise InvalidArgumentError(f"{HANDOVER}: {key} must be a number of seconds", path=HANDOVER)
    for key in ("title", "artist", "album"):
        if not isinstance(data.get(key, ""), str):
            raise InvalidArgumentError(f"{HANDOVER}: {key} must be text", path=HANDOVER)
    return data


class MediaService:
    """Serves the media actuators on a vehicle-data port and publishes the player's state."""

    def __init__(self, port: VehiclePort, library: MediaLibrary) -> None:
        self.port = port
        self.library = library
        self.player = Player().load(self._queue(ALL))
        self._screen: Mirror | None = None
        self._load_w: float | None = None

    def _queue(self, playlist: str) -> tuple[Track, ...]:
        return tuple(self.library.tracks[uri] for uri in self.library.playlists.get(playlist, ()))

    def _check(self, batch: Mapping[str, Any]) -> None:
        playlist = batch.get(PLAYLIST)
        if playlist is not None and playlist not in self.library.playlists:
            raise InvalidArgumentError(f"{PLAYLIST}: no playlist {playlist!r}; playlists: "
                                       f"{', '.join(sorted(self.library.playlists))}", path=PLAYLIST)
        uri = batch.get(SELECTED)
        if uri and uri not in self.library.tracks and not any(t.uri == uri for t in self.player.queue):
            raise InvalidArgumentError(f"{SELECTED}: {uri!r} is not in the media library", path=SELECTED)

    def _on_actuate(self, batch: dict[str, Any]) -> None:
        if HANDOVER in batch:
            h = parse_handover(batch[HANDOVER])
            self.handover(h["uri"], float(h.get("position_s", 0.0)), h.get("title", ""), h.get("artist", ""),
                          h.get("album", ""), float(h.get("duration_s", 0.0)))
            self.port.publish_nowait({HANDOVER: batch[HANDOVER]})
            batch = {p: v for p, v in batch.items() if p != HANDOVER}
            if not batch:
                return
        self._check(batch)
        p = self.player
        if PLAYLIST in batch:
            p = p.load(self._queue(batch[PLAYLIST]), playlist=batch[PLAYLIST])
        if batch.get(SELECTED):
            p = self._select(p, batch[SELECTED])
        if SOURCE in batch:
            p = replace(p, source=batch[SOURCE])
        if VOLUME in batch:
            p = replace(p, volume_pct=int(batch[VOLUME]))
        if RATE in batch:
            p = replace(p, rate=max(float(batch[RATE]), 0.0))
        if POSITION in batch:
            p = p.seek(float(batch[POSITION]))
        action = batch.get(ACTION)
        if action is not None:
            p = {
                "PLAY": p.play, "STOP": p.pause, "SKIP_FORWARD": p.next, "SKIP_BACKWARD": p.previous,
                "FAST_FORWARD": lambda: p.seek(p.position_s + SEEK_STEP_S),
                "FAST_BACKWARD": lambda: p.seek(p.position_s - SEEK_STEP_S),
            }.get(action, lambda: p)()
        self.player = p
        self.publish()

    def _select(self, p: Player, uri: str) -> Player:
        for i, track in enumerate(p.queue):
            if track.uri == uri:
                return replace(p, index=i, position_s=0.0)
        queue = self._queue(ALL)
        index = next(i for i, t in enumerate(queue) if t.uri == uri)
        return p.load(queue, index, ALL, "USB")

    def handover(self, uri: str, position_s: float, title: str = "", artist: str = "", album: str = "",
                 duration_s: float = 0.0) -> Player:
        """Take over the phone's current track at ``position_s`` and play it: from the library if it is there,
        else streamed from the phone (source BLUETOOTH) with the tags the phone sent."""
        if not uri:
            raise InvalidArgumentError("handover needs the track's URI", path=HANDOVER)
        if not math.isfinite(position_s) or position_s < 0:
            raise InvalidArgumentError(f"handover position {position_s} s: must be a finite number of seconds >= 0",
                                       path=HANDOVER)
        if uri in self.library.tracks:
            p = self._select(self.player, uri)
        else:
            check_phone_uri(uri)
            track = Track(uri=uri, title=title or uri.rsplit("/", 1)[-1], artist=artist, album=album,
                          duration_s=max(duration_s, 0.0))
            p = self.player.load((track,), 0, "phone", "BLUETOOTH")
        p = p.seek(position_s).play()
        self.port.publish_nowait(p.signals())  # raises (changing nothing) if a value does not fit its signal
        self.player = p
        return p

    def publish(self) -> None:
        values: dict[str, Value] = dict(self.player.signals())
        screen = self._screen.values() if self._screen is not None else {}
        load_w = media_load_w({ACTION: values[ACTION], **screen})
        if load_w != self._load_w:
            values[MEDIA_LOAD] = self._load_w = load_w
        self.port.publish_nowait(values)

    def tick(self, dt_s: float) -> None:
        if self.player.playing:
            self.player = self.player.advance(dt_s)
            self.publish()

    async def run(self, stop: asyncio.Event, ready: Callable[[], None] = lambda: None) -> None:
        """Publish the player state, then keep its clock at 2 Hz until ``stop``."""
        self._screen = await Mirror(self.port, (BRIGHTNESS,)).start()
        self._screen.on_change(lambda _batch: self.publish())  # the screen's brightness changes the media load
        await self.port.provide((*ACTUATORS, HANDOVER), self._on_actuate)
        self.publish()
        ready()
        last = time.monotonic()
        try:
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 0.5)
                now = time.monotonic()
                self.tick(now - last)
                last = now
        finally:
            await self._screen.stop()


async def _main(port: VehiclePort, env: AppEnv) -> None:
    # scanning the library opens every file: off the event loop
    library = await asyncio.to_thread(MediaLibrary, env.data_dir / "media" if env.data_dir is not None else None)
    media = MediaService(port, library)
    env.instance = media
    await media.run(env.stop, env.ready)


MEDIA_APP = App(
    name="media", summary="the media player: the library, playlists, films, the phone's hand-over",
    partition="comfort", main=_main, overlays=(TWIN_OVERLAY, OVERLAY),
    grants=Grants(read=paths_in(BRIGHTNESS), provide=paths_in(MEDIA, EVOS_MEDIA, MEDIA_LOAD),
                  actuate=paths_in(*ACTUATORS, HANDOVER)),
)

"""The media service over real tagged audio and video files, through the broker's VSS media signals."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import pytest

from cabin.media_files import make_library, make_videos, write_sound_only, write_video
from cabin.waits import eventually
from evos.cabin import MediaLibrary, Player
from evos.errors import InvalidArgumentError

M = "Vehicle.Cabin.Infotainment.Media"
E = "Vehicle.Evos.Cabin.Media"
POSITION = f"{E}.Position"


def test_library_reads_tags_and_playlists(tmp_path: Path) -> None:
    files = make_library(tmp_path)
    (tmp_path / "notes.txt").write_text("not audio")
    library = MediaLibrary(tmp_path)
    assert [t.title for t in library.tracks.values()] == ["Dawn", "Open Road", "Night Drive"]
    dawn = library.tracks[files[0].resolve().as_uri()]
    assert (dawn.artist, dawn.album, dawn.duration_s) == ("Ada Quartet", "Mornings", pytest.approx(2.0))
    assert [library.tracks[u].title for u in library.playlists["chill"]] == ["Night Drive", "Dawn"]
    assert set(library.playlists) == {"all", "audio", "video", "chill"} and library.playlists["video"] == ()
    assert library.playlists["audio"] == library.playlists["all"]


def test_player_advances_through_the_queue(tmp_path: Path) -> None:
    make_library(tmp_path)
    library = MediaLibrary(tmp_path)
    player = Player().load(tuple(library.tracks.values())).play()
    player = player.advance(2.5)  # past Dawn (2 s) into Open Road
    assert player.track is not None and player.track.title == "Open Road"
    assert player.position_s == pytest.approx(0.5)
    assert player.previous().position_s == 0 and player.previous().track.title == "Dawn"  # type: ignore[union-attr]
    player = player.advance(100)  # runs off the end of the queue: stops on the last track
    assert not player.playing and player.track.title == "Night Drive"  # type: ignore[union-attr]
    assert player.seek(-5).position_s == 0 and player.seek(99).position_s == pytest.approx(1.5)


async def test_media_signals_and_actuators_through_the_broker(car) -> None:
    b = car.broker
    assert car.value(f"{M}.Played.Track") == "Dawn" and car.value(f"{M}.Action") == "STOP"
    await b.actuate({f"{M}.Action": "PLAY", f"{M}.Volume": 55})
    assert car.value(f"{M}.Action") == "PLAY" and car.value(f"{M}.Volume") == 55
    await eventually(lambda: car.value(POSITION) > 0.4)  # the clock runs while playing
    await b.actuate({f"{M}.Action": "SKIP_FORWARD"})
    assert car.value(f"{M}.Played.Track") == "Open Road" and car.value(f"{M}.Played.Artist") == "Ada Quartet"
    assert car.value("Vehicle.Evos.Cabin.Media.Duration") == pytest.approx(3.0)
    await b.actuate({POSITION: 2.5})
    await eventually(lambda: car.value(f"{M}.Played.Track") == "Night Drive")  # played on to the next
    await b.actuate({"Vehicle.Evos.Cabin.Media.Playlist": "chill"})
    assert car.value(f"{M}.Played.Track") == "Night Drive" and car.value(f"{M}.Played.Album") == "City"
    await b.actuate({f"{M}.Action": "STOP"})
    assert car.value(f"{M}.Action") == "STOP"
    with pytest.raises(InvalidArgumentError, match="no playlist 'jazz'; playlists: all, audio, chill, mixed, video"):
        await b.actuate({"Vehicle.Evos.Cabin.Media.Playlist": "jazz"})
    with pytest.raises(InvalidArgumentError, match="is not in the media library"):
        await b.actuate({f"{M}.SelectedURI": "file:///nowhere.flac"})


async def test_phone_hands_its_track_over(car) -> None:
    library = car.media.library
    road = next(u for u, t in library.tracks.items() if t.title == "Open Road")
    car.media.handover(road, 1.25)
    assert car.value(f"{M}.Played.URI") == road and car.value(f"{M}.Action") == "PLAY"
    assert car.value(POSITION) == pytest.approx(1.25, abs=0.01)
    car.media.handover("spotify:track:4uLU6hMCjMI75M1A2tKUQC", 61.0, title="Song From Phone", artist="X")
    assert car.value(f"{M}.Played.Source") == "BLUETOOTH" and car.value(f"{M}.Played.Track") == "Song From Phone"
    assert car.value(POSITION) == pytest.approx(61.0)
    for position_s in (-1.0, float("nan"), float("inf")):
        with pytest.raises(InvalidArgumentError, match=r"must be a finite number of seconds >= 0"):
            car.media.handover(road, position_s)
    with pytest.raises(InvalidArgumentError, match=r"the scheme .file. is not one a phone may hand over"):
        car.media.handover((library.root / ".." / "secret.wav").resolve().as_uri(), 0.0)
    with pytest.raises(InvalidArgumentError, match="32-bit float"):  # the broker refuses it: nothing changes
        car.media.handover("spotify:track:other", 1e308, title="Other")
    assert car.value(f"{M}.Played.Track") == "Song From Phone" and car.value(POSITION) == pytest.approx(61.0)
    assert car.media.player.position_s == pytest.approx(61.0)


def test_library_reads_video_files_and_skips_broken_ones(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    make_library(tmp_path)
    harbour, tunnel = make_videos(tmp_path)
    write_video(tmp_path / "06-untitled.mkv", 0.5, title="", rate_hz=5)
    write_sound_only(tmp_path / "07-radio.webm", 1.0, "Radio Play")
    (tmp_path / "08-broken.mp4").write_bytes(b"\0\0\0\x18ftypisom" + bytes(range(256)) * 8)  # a header, no movie
    (tmp_path / "09-empty.mov").write_bytes(b"")
    with caplog.at_level(logging.WARNING, logger="evos.cabin.media"):
        library = MediaLibrary(tmp_path)
    film = library.tracks[harbour.resolve().as_uri()]
    assert (film.title, film.kind, film.resolution, film.video_codec) == ("Harbour Lights", "VIDEO", "64x48", "mpeg4")
    assert (film.duration_s, film.frame_rate_hz) == (pytest.approx(1.0), pytest.approx(10.0))
    vp9 = library.tracks[tunnel.resolve().as_uri()]
    assert (vp9.resolution, vp9.video_codec, vp9.frame_rate_hz, vp9.duration_s) == ("80x60", "vp9", 25.0,
                                                                                    pytest.approx(1.2))
    titles = {t.title: t for t in library.tracks.values()}
    assert titles["06-untitled"].kind == "VIDEO"  # no title tag: the file name
    radio = titles["Radio Play"]  # a video suffix with sound only is audio
    assert (radio.kind, radio.resolution, radio.duration_s) == ("AUDIO", "", pytest.approx(1.0, abs=0.05))
    assert [library.tracks[u].title for u in library.playlists["video"]] == ["Harbour Lights", "Tunnel", "06-untitled"]
    assert [library.tracks[u].title for u in library.playlists["mixed"]] == ["Harbour Lights", "Dawn", "Tunnel"]
    assert not any("broken" in u or "empty" in u for u in library.tracks)
    warnings = [r.getMessage() for r in caplog.records]
    for name in ("08-broken.mp4", "09-empty.mov"):
        assert any(name in w and "not a readable video file" in w for w in warnings), warnings


def test_a_playlist_mixing_audio_and_video_plays_through(tmp_path: Path) -> None:
    make_library(tmp_path)
    make_videos(tmp_path)
    library = MediaLibrary(tmp_path)
    player = Player().load(tuple(library.tracks[u] for u in library.playlists["mixed"]), playlist="mixed").play()
    kinds = []
    for _ in range(10):  # 0.5 s steps through 1.0 + 2.0 + 1.2 s of film, song, film
        kinds.append((player.track.title, player.signals()[f"{E}.Kind"]))  # type: ignore[union-attr]
        player = player.advance(0.5)
    assert kinds[0] == ("Harbour Lights", "VIDEO") and ("Dawn", "AUDIO") in kinds and kinds[-1] == ("Tunnel", "VIDEO")
    assert not player.playing and player.position_s == pytest.approx(1.2)  # stopped at the end of the last film
    signals = player.signals()
    assert (signals[f"{E}.VideoResolution"], signals[f"{E}.VideoCodec"], signals[f"{M}.Played.Track"]) == (
        "80x60", "vp9", "Tunnel")


async def test_cinema_selects_a_film_through_the_broker(car, tmp_path: Path) -> None:
    b = car.broker
    assert car.value(f"{E}.Kind") == "AUDIO" and car.value(f"{E}.VideoResolution") == ""
    make_videos(tmp_path / "media")
    car.media.library.rescan()  # the films were copied in after the car started
    # the cinema scene with the film playlist selected (as the shipped cinema.yaml does once it sets Playlist: video)
    cinema = car.cabin.engine.scene("cinema")
    car.cabin.engine.scenes["cinema"] = replace(cinema, set={**cinema.set, f"{E}.Playlist": "video"})
    await b.actuate({"Vehicle.Evos.Cabin.Scene": "cinema"})
    await eventually(lambda: car.value(f"{M}.Played.Track") == "Harbour Lights" and car.value(f"{M}.Action") == "PLAY")
    assert (car.value(f"{E}.Kind"), car.value(f"{E}.VideoResolution"), car.value(f"{E}.VideoCodec")) == (
        "VIDEO", "64x48", "mpeg4")
    assert car.value(f"{E}.VideoFrameRate") == pytest.approx(10.0) and car.value(f"{E}.Duration") == pytest.approx(1.0)
    assert car.value(f"{M}.Played.Source") == "USB"
    await eventually(lambda: car.value(f"{M}.Played.Track") == "Tunnel")  # the next film of the playlist
    assert car.value(f"{E}.VideoResolution") == "80x60" and car.value(f"{E}.VideoFrameRate") == pytest.approx(25.0)
    await b.actuate({"Vehicle.Evos.Cabin.Scene": "NONE"})  # leaving the scene restores the music
    await eventually(lambda: car.value(f"{E}.Playlist") == "all" and car.value(f"{M}.Action") == "STOP")
    assert car.value(f"{M}.Played.Track") == "Dawn" and car.value(f"{E}.Kind") == "AUDIO"
    tunnel = (tmp_path / "media" / "05-tunnel.webm").resolve().as_uri()
    await b.actuate({f"{M}.SelectedURI": tunnel})  # or pick one by URI
    assert car.value(f"{M}.Played.Track") == "Tunnel" and car.value(f"{E}.Kind") == "VIDEO"

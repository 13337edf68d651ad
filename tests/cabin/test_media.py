"""The media service over real tagged files, through the broker's VSS media signals."""

from __future__ import annotations

from pathlib import Path

import pytest

from cabin.media_files import make_library
from cabin.waits import eventually
from evos.cabin import MediaLibrary, Player
from evos.errors import InvalidArgumentError

M = "Vehicle.Cabin.Infotainment.Media"
POSITION = "Vehicle.Evos.Cabin.Media.Position"


def test_library_reads_tags_and_playlists(tmp_path: Path) -> None:
    files = make_library(tmp_path)
    (tmp_path / "notes.txt").write_text("not audio")
    library = MediaLibrary(tmp_path)
    assert [t.title for t in library.tracks.values()] == ["Dawn", "Open Road", "Night Drive"]
    dawn = library.tracks[files[0].resolve().as_uri()]
    assert (dawn.artist, dawn.album, dawn.duration_s) == ("Ada Quartet", "Mornings", pytest.approx(2.0))
    assert [library.tracks[u].title for u in library.playlists["chill"]] == ["Night Drive", "Dawn"]
    assert set(library.playlists) == {"all", "chill"}


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
    b.batch_actuate({f"{M}.Action": "PLAY", f"{M}.Volume": 55})
    assert car.value(f"{M}.Action") == "PLAY" and car.value(f"{M}.Volume") == 55
    await eventually(lambda: car.value(POSITION) > 0.4)  # the clock runs while playing
    b.actuate(f"{M}.Action", "SKIP_FORWARD")
    assert car.value(f"{M}.Played.Track") == "Open Road" and car.value(f"{M}.Played.Artist") == "Ada Quartet"
    assert car.value("Vehicle.Evos.Cabin.Media.Duration") == pytest.approx(3.0)
    b.actuate(POSITION, 2.5)
    await eventually(lambda: car.value(f"{M}.Played.Track") == "Night Drive")  # played on to the next
    b.actuate("Vehicle.Evos.Cabin.Media.Playlist", "chill")
    assert car.value(f"{M}.Played.Track") == "Night Drive" and car.value(f"{M}.Played.Album") == "City"
    b.actuate(f"{M}.Action", "STOP")
    assert car.value(f"{M}.Action") == "STOP"
    with pytest.raises(InvalidArgumentError, match="no playlist 'jazz'; playlists: all, chill"):
        b.actuate("Vehicle.Evos.Cabin.Media.Playlist", "jazz")
    with pytest.raises(InvalidArgumentError, match="is not in the media library"):
        b.actuate(f"{M}.SelectedURI", "file:///nowhere.flac")


async def test_phone_hands_its_track_over(car) -> None:
    library = car.cabin.library
    road = next(u for u, t in library.tracks.items() if t.title == "Open Road")
    car.cabin.media.handover(road, 1.25)
    assert car.value(f"{M}.Played.URI") == road and car.value(f"{M}.Action") == "PLAY"
    assert car.value(POSITION) == pytest.approx(1.25, abs=0.01)
    car.cabin.media.handover("spotify:track:4uLU6hMCjMI75M1A2tKUQC", 61.0, title="Song From Phone", artist="X")
    assert car.value(f"{M}.Played.Source") == "BLUETOOTH" and car.value(f"{M}.Played.Track") == "Song From Phone"
    assert car.value(POSITION) == pytest.approx(61.0)
    for position_s in (-1.0, float("nan"), float("inf")):
        with pytest.raises(InvalidArgumentError, match=r"must be a finite number of seconds >= 0"):
            car.cabin.media.handover(road, position_s)
    with pytest.raises(InvalidArgumentError, match="a file URI must be a track of the media library"):
        car.cabin.media.handover((library.root / ".." / "secret.wav").resolve().as_uri(), 0.0)
    with pytest.raises(InvalidArgumentError, match="32-bit float"):  # the broker refuses it: nothing changes
        car.cabin.media.handover("spotify:track:other", 1e308, title="Other")
    assert car.value(f"{M}.Played.Track") == "Song From Phone" and car.value(POSITION) == pytest.approx(61.0)
    assert car.cabin.media.player.position_s == pytest.approx(61.0)

"""The smart cabin: scenes (office, cinema, rest, camp, pet, living), their energy forecast, the media player, the
offline assistant and the centre screen, all on the vehicle-data port.

Apps of the car: ``CABIN_APP`` (the scene engine) and ``MEDIA_APP`` (the player); ``CABIN_OVERLAY`` is the overlay
with the cabin signals VSS lacks. ``centre_screen(port, env)`` gives the centre screen's router (the companion's
web server mounts it). Library API: ``Assistant`` turns English or Chinese text into VSS actions and a reply
(``act`` carries them out), ``forecast`` says how long a scene can run, ``load_scenes`` reads scene files.
"""

from evos.cabin._assistant import Answer, Assistant, act
from evos.cabin._engine import Conditions, SceneEngine, SceneRefusedError, format_duration
from evos.cabin._forecast import Forecast, forecast
from evos.cabin._media import MEDIA_APP, MediaLibrary, MediaService, Player, Track
from evos.cabin._scenes import Scene, SceneFileError, load_scene, load_scenes
from evos.cabin._screen import CentreScreen, centre_screen
from evos.cabin._service import CABIN_APP, CabinService
from evos.cabin._service import OVERLAY as CABIN_OVERLAY

__all__ = [
    "CABIN_APP",
    "CABIN_OVERLAY",
    "MEDIA_APP",
    "Answer",
    "Assistant",
    "CabinService",
    "CentreScreen",
    "Conditions",
    "Forecast",
    "MediaLibrary",
    "MediaService",
    "Player",
    "Scene",
    "SceneEngine",
    "SceneFileError",
    "SceneRefusedError",
    "Track",
    "act",
    "centre_screen",
    "forecast",
    "format_duration",
    "load_scene",
    "load_scenes",
]

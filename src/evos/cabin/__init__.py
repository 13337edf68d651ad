"""The smart cabin: scenes (office, cinema, rest, camp, pet, living), their energy forecast, the media
service and the offline assistant, all as apps on the broker.

``CabinService(broker, data_dir)`` runs scenes and media in the car (``evos up``); ``CABIN_OVERLAY`` is the
overlay with the cabin signals VSS lacks; ``cabin_router(service)`` serves the centre screen;
``Assistant`` turns English or Chinese text into VSS actions and a reply.
"""

from evos.cabin._assistant import Answer, Assistant
from evos.cabin._engine import Conditions, SceneEngine, SceneRefusedError, format_duration
from evos.cabin._forecast import Forecast, forecast
from evos.cabin._media import MediaLibrary, MediaService, Player, Track
from evos.cabin._scenes import Scene, SceneFileError, load_scene, load_scenes
from evos.cabin._service import OVERLAY as CABIN_OVERLAY
from evos.cabin._service import CabinService
from evos.cabin._web import cabin_router

__all__ = [
    "CABIN_OVERLAY",
    "Answer",
    "Assistant",
    "CabinService",
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
    "cabin_router",
    "forecast",
    "format_duration",
    "load_scene",
    "load_scenes",
]

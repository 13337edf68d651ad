"""The owner's phone: the companion web app and remote API (accounts, OAuth scopes, phone keys, signed commands).

``companion_app(routers)`` is the app of the car: ``CompanionService(port, CompanionConfig(...))`` serves the web
app at ``/`` and the API under ``/api/v1`` and records trips and charging sessions; a pairing code is shown on
the car's own screen only (never a signal). The ``evos users`` and ``evos pair`` commands are in
``evos.companion._cli``. See docs/companion.md.
"""

from evos.companion._config import SCOPES, CompanionConfig
from evos.companion._service import CompanionService, RouterFactory, companion_app

__all__ = ["SCOPES", "CompanionConfig", "CompanionService", "RouterFactory", "companion_app"]

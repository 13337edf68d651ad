"""The companion as the car runs it: with the cabin's centre screen on its web server."""

from evos.cabin import centre_screen
from evos.companion import companion_app

COMPANION_APP = companion_app([centre_screen])

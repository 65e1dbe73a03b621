"""Reliability fixtures reuse the integration ones: the real server and the Segment stand-in."""

from tests.integration.conftest import server, standin, workdir

__all__ = ["server", "standin", "workdir"]

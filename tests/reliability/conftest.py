"""Reliability fixtures reuse the integration ones: the service in this process or in its own,
and the Segment stand-in."""

from tests.integration.conftest import process_server, server, standin, workdir

__all__ = ["process_server", "server", "standin", "workdir"]

"""The error tree. Callers catch the kind they act on; third-party errors are mapped at the edges.

DodoTransformError
├── HandlerError        a transform's code is wrong: fix the .js file (not retried)
├── SignatureError      a webhook's signature is missing, bad or expired: answer 401
├── PayloadError        a verified webhook body is unusable: answer 400
├── DeliveryError       sending a request failed
│   ├── RetryableDelivery   network error, 408, 429, 5xx: try again later
│   └── FinalDelivery       other 4xx, blocked host: give up
├── StorageError        the store cannot be read or written: answer 503, retry later
└── ConfigError         settings are unusable: fix the configuration
"""

from __future__ import annotations


class DodoTransformError(Exception):
    """Base of every error this package raises on purpose."""


class HandlerError(DodoTransformError):
    """A transform failed: syntax error, throw, limit hit, or a broken return value."""


class SignatureError(DodoTransformError):
    """A webhook could not be verified against any configured secret."""


class PayloadError(DodoTransformError):
    """A verified webhook body is not a JSON object with a string `type`."""


class DeliveryError(DodoTransformError):
    """Sending one outgoing request failed."""

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: float | None = None
    ):
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class RetryableDelivery(DeliveryError):
    """The destination may accept the same request later."""


class FinalDelivery(DeliveryError):
    """The destination will never accept this request."""


class BlockedDestination(FinalDelivery):
    """The request's host is not on the outbound allowlist."""


class StorageError(DodoTransformError):
    """The durable store failed."""


class ConfigError(DodoTransformError):
    """The settings are unusable."""

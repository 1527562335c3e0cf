"""The one exception tree of qrgw.

Every error that can reach a partner carries a stable ``code`` (documented in
``docs/errors.md``), an HTTP ``status``, a human ``detail`` that never echoes a
secret, and, where known, the ``request_id`` and the ``partner``. One aiohttp
middleware (``gateway.api.problems``) maps the tree to RFC 9457 problem+json;
every boundary maps foreign exceptions into it with ``raise X(...) from exc``.

It lives in ``schemas`` (the lowest layer) so that ``fx``, ``adapters`` and
``gateway`` all raise the same types::

    QrgwError                          500 INTERNAL_ERROR
    ├── RequestError                   400 BAD_REQUEST
    │   ├── InvalidJSON                400 INVALID_JSON
    │   ├── ValidationFailed           422 VALIDATION_ERROR
    │   │   └── AmountTooLarge         422 AMOUNT_TOO_LARGE
    │   ├── HeaderTooLarge             431 HEADER_TOO_LARGE
    │   ├── RequestTimeout             408 REQUEST_TIMEOUT
    │   ├── UnsupportedMediaType       415 UNSUPPORTED_MEDIA_TYPE
    │   ├── PayloadTooLarge            413 PAYLOAD_TOO_LARGE
    │   ├── NotFound                   404 NOT_FOUND | PAYMENT_NOT_FOUND | DEAD_LETTER_NOT_FOUND
    │   └── MethodNotAllowed           405 METHOD_NOT_ALLOWED
    ├── QRError                        422 QR_MALFORMED | QR_CRC_MISMATCH | QR_MISSING_FIELD
    │   │                                  | QR_INVALID_FIELD | QR_UNSUPPORTED_FORMAT | QR_EXPIRED
    │   └── NoRoute                    422 QR_NO_ROUTE
    ├── AuthError                      401
    │   ├── SignatureMissing           401 SIGNATURE_MISSING
    │   ├── SignatureInvalid           401 SIGNATURE_INVALID
    │   ├── SignatureExpired           401 SIGNATURE_EXPIRED
    │   ├── SignatureReplayed          401 SIGNATURE_REPLAYED
    │   ├── KeyUnknown                 401 KEY_UNKNOWN
    │   ├── DigestMismatch             401 DIGEST_MISMATCH
    │   └── OperatorUnauthorized       401 OPERATOR_TOKEN_INVALID (admin API)
    ├── Forbidden                      403 ROLE_NOT_ALLOWED
    │   ├── PartnerPaused              403 PARTNER_PAUSED
    │   └── OperatorForbidden          403 OPERATOR_ROLE_NOT_ALLOWED (admin API)
    ├── ConflictError                  409 IDEMPOTENCY_CONFLICT
    │   ├── IdempotencyInProgress      409 IDEMPOTENCY_IN_PROGRESS
    │   └── InvalidState               409 INVALID_STATE | CANCEL_WINDOW_CLOSED
    ├── FXError                        422 CURRENCY_UNSUPPORTED
    │   ├── QuoteExpired               422 QUOTE_EXPIRED
    │   ├── QuoteInvalid               422 QUOTE_INVALID
    │   ├── LimitExceeded              422 FX_LIMIT_EXCEEDED
    │   ├── DataRequired               422 FX_DATA_REQUIRED
    │   ├── RefundExceedsPayment       422 REFUND_EXCEEDS_PAYMENT
    │   ├── RateStale                  503 FX_RATE_STALE
    │   └── RegistryUnavailable        503 FX_REGISTRY_UNAVAILABLE
    ├── ScreeningHit                   403 SCREENING_HIT
    ├── RateLimited                    429 RATE_LIMITED
    ├── StoreUnavailable               503 STORE_UNAVAILABLE
    ├── ConfigError                    (start-up only; never reaches a partner)
    └── PartnerError                   502 PARTNER_ERROR  (gateway -> partner calls)
        ├── PartnerUnavailable         503 PARTNER_UNAVAILABLE  (timeout, refused, 5xx: outcome unknown)
        └── PartnerProtocolError       502 PARTNER_PROTOCOL_ERROR (bad JSON, bad signature, missing field)
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "AmountTooLarge",
    "AuthError",
    "ConfigError",
    "ConflictError",
    "DataRequired",
    "DigestMismatch",
    "FXError",
    "Forbidden",
    "HeaderTooLarge",
    "IdempotencyInProgress",
    "InvalidJSON",
    "InvalidState",
    "KeyUnknown",
    "LimitExceeded",
    "MethodNotAllowed",
    "NoRoute",
    "NotFound",
    "OperatorForbidden",
    "OperatorUnauthorized",
    "PartnerError",
    "PartnerPaused",
    "PartnerProtocolError",
    "PartnerUnavailable",
    "PayloadTooLarge",
    "QRError",
    "QrgwError",
    "QuoteExpired",
    "QuoteInvalid",
    "RateLimited",
    "RateStale",
    "RefundExceedsPayment",
    "RegistryUnavailable",
    "RequestError",
    "RequestTimeout",
    "ScreeningHit",
    "SignatureExpired",
    "SignatureInvalid",
    "SignatureMissing",
    "SignatureReplayed",
    "StoreUnavailable",
    "UnsupportedMediaType",
    "ValidationFailed",
]


class QrgwError(Exception):
    """Base of every qrgw error.

    ``code`` defaults to the class's ``default_code``; a class that allows
    several codes lists them in ``codes`` and checks the one given. ``extra``
    holds machine-readable members added to the problem document (``offset``,
    ``limit``, ``remaining``, ``retry_after`` ...): never secrets.
    """

    status: ClassVar[int] = 500
    default_code: ClassVar[str] = "INTERNAL_ERROR"
    title: ClassVar[str] = "Internal error"
    codes: ClassVar[frozenset[str]] = frozenset()

    def __init__(
        self,
        detail: str = "",
        *,
        code: str | None = None,
        request_id: str | None = None,
        partner: str | None = None,
        **extra: Any,
    ) -> None:
        chosen = code or self.default_code
        if code is not None and self.codes and code not in self.codes:
            raise ValueError(f"{type(self).__name__} does not carry code {code!r}")
        super().__init__(detail or self.title)
        self.code: str = chosen
        self.detail: str = detail or self.title
        self.request_id = request_id
        self.partner = partner
        self.extra: dict[str, Any] = extra

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, detail={self.detail!r})"


# --- requests ---------------------------------------------------------------------------------------
class RequestError(QrgwError):
    status = 400
    default_code = "BAD_REQUEST"
    title = "Bad request"


class InvalidJSON(RequestError):
    default_code = "INVALID_JSON"
    title = "Body is not valid JSON"


class ValidationFailed(RequestError):
    status = 422
    default_code = "VALIDATION_ERROR"
    title = "Request failed validation"


class AmountTooLarge(ValidationFailed):
    """An amount past ``schemas.money.MAX_MINOR_UNITS`` (docs/fx.md)."""

    default_code = "AMOUNT_TOO_LARGE"
    title = "Amount exceeds the maximum"


class HeaderTooLarge(RequestError):
    """A header line, or the header section, past the server's limits (refused while parsing)."""

    status = 431
    default_code = "HEADER_TOO_LARGE"
    title = "Request header fields too large"


class RequestTimeout(RequestError):
    """The request body did not arrive within ``server.body_timeout_s``."""

    status = 408
    default_code = "REQUEST_TIMEOUT"
    title = "Request timeout"


class UnsupportedMediaType(RequestError):
    status = 415
    default_code = "UNSUPPORTED_MEDIA_TYPE"
    title = "Unsupported media type"


class PayloadTooLarge(RequestError):
    status = 413
    default_code = "PAYLOAD_TOO_LARGE"
    title = "Payload too large"


class NotFound(RequestError):
    status = 404
    default_code = "NOT_FOUND"
    title = "Not found"
    codes = frozenset({"NOT_FOUND", "PAYMENT_NOT_FOUND", "SETTLEMENT_NOT_FOUND", "DEAD_LETTER_NOT_FOUND"})


class MethodNotAllowed(RequestError):
    status = 405
    default_code = "METHOD_NOT_ALLOWED"
    title = "Method not allowed"


# --- merchant QR ------------------------------------------------------------------------------------
class QRError(QrgwError):
    """A merchant QR payload that does not conform; ``extra`` has ``offset`` and ``tag_path``."""

    status = 422
    default_code = "QR_MALFORMED"
    title = "Invalid merchant QR code"
    codes = frozenset(
        {"QR_MALFORMED", "QR_CRC_MISMATCH", "QR_MISSING_FIELD", "QR_INVALID_FIELD", "QR_UNSUPPORTED_FORMAT",
         "QR_EXPIRED"}
    )

    @property
    def offset(self) -> int | None:
        value = self.extra.get("offset")
        return value if isinstance(value, int) else None

    @property
    def tag_path(self) -> str | None:
        value = self.extra.get("tag_path")
        return value if isinstance(value, str) else None


class NoRoute(QRError):
    default_code = "QR_NO_ROUTE"
    title = "No route for this merchant QR code"
    codes = frozenset({"QR_NO_ROUTE"})


# --- authentication ---------------------------------------------------------------------------------
class AuthError(QrgwError):
    status = 401
    default_code = "SIGNATURE_INVALID"
    title = "Authentication failed"


class SignatureMissing(AuthError):
    default_code = "SIGNATURE_MISSING"
    title = "Signature missing or malformed"


class SignatureInvalid(AuthError):
    default_code = "SIGNATURE_INVALID"
    title = "Signature invalid"


class SignatureExpired(AuthError):
    default_code = "SIGNATURE_EXPIRED"
    title = "Signature expired or not yet valid"


class SignatureReplayed(AuthError):
    default_code = "SIGNATURE_REPLAYED"
    title = "Signature replayed"


class KeyUnknown(AuthError):
    default_code = "KEY_UNKNOWN"
    title = "Unknown or inactive key"


class DigestMismatch(AuthError):
    default_code = "DIGEST_MISMATCH"
    title = "Content-Digest does not match the body"


class Forbidden(QrgwError):
    """An authenticated partner asking for something its roles (``partners[].roles``) do not allow."""

    status = 403
    default_code = "ROLE_NOT_ALLOWED"
    title = "Not allowed for this partner's roles"


class PartnerPaused(Forbidden):
    """The calling wallet is paused by the scheme operator (admin API): nothing was done."""

    default_code = "PARTNER_PAUSED"
    title = "This partner is paused by the operator"


class OperatorUnauthorized(AuthError):
    """Admin API: no ``Authorization: Bearer`` token, or one no operator holds."""

    default_code = "OPERATOR_TOKEN_INVALID"
    title = "A valid operator token is required"


class OperatorForbidden(Forbidden):
    """Admin API: the operator's role (viewer, operator, admin) does not allow this action."""

    default_code = "OPERATOR_ROLE_NOT_ALLOWED"
    title = "Not allowed for this operator's role"


# --- conflicts --------------------------------------------------------------------------------------
class ConflictError(QrgwError):
    status = 409
    default_code = "IDEMPOTENCY_CONFLICT"
    title = "Conflict"


class IdempotencyInProgress(ConflictError):
    default_code = "IDEMPOTENCY_IN_PROGRESS"
    title = "A request with this id is still being processed"


class InvalidState(ConflictError):
    default_code = "INVALID_STATE"
    title = "Not allowed in the payment's current state"
    codes = frozenset({"INVALID_STATE", "CANCEL_WINDOW_CLOSED"})


# --- FX ---------------------------------------------------------------------------------------------
class FXError(QrgwError):
    status = 422
    default_code = "CURRENCY_UNSUPPORTED"
    title = "Currency conversion failed"


class QuoteExpired(FXError):
    default_code = "QUOTE_EXPIRED"
    title = "Quote expired"


class QuoteInvalid(FXError):
    default_code = "QUOTE_INVALID"
    title = "Quote invalid"


class LimitExceeded(FXError):
    """``extra``: ``limit`` (name), ``limit_value``, ``remaining`` (money dicts)."""

    default_code = "FX_LIMIT_EXCEEDED"
    title = "Foreign-exchange limit exceeded"


class DataRequired(FXError):
    default_code = "FX_DATA_REQUIRED"
    title = "Data required by the foreign-exchange rules is missing"


class RefundExceedsPayment(FXError):
    default_code = "REFUND_EXCEEDS_PAYMENT"
    title = "Refund exceeds what remains of the payment"


class RateStale(FXError):
    status = 503
    default_code = "FX_RATE_STALE"
    title = "Exchange rates are stale"


class RegistryUnavailable(FXError):
    """The national limit registry did not answer and the configured fallback is to refuse."""

    status = 503
    default_code = "FX_REGISTRY_UNAVAILABLE"
    title = "The national limit registry is unavailable"


class ScreeningHit(QrgwError):
    """Payer or merchant matched the screening list; the detail never says which entry."""

    status = 403
    default_code = "SCREENING_HIT"
    title = "Payment refused by compliance screening"


# --- service ----------------------------------------------------------------------------------------
class RateLimited(QrgwError):
    """``extra['retry_after']`` (seconds) becomes the Retry-After header."""

    status = 429
    default_code = "RATE_LIMITED"
    title = "Too many requests"


class StoreUnavailable(QrgwError):
    """The state store did not answer; nothing was half-written. Answered 503 with Retry-After."""

    status = 503
    default_code = "STORE_UNAVAILABLE"
    title = "State store unavailable"


class ConfigError(QrgwError):
    """Bad configuration, raised at start-up: names the file, the key and what is wrong."""

    default_code = "CONFIG_ERROR"
    title = "Invalid configuration"


# --- partners (outbound) ----------------------------------------------------------------------------
class PartnerError(QrgwError):
    status = 502
    default_code = "PARTNER_ERROR"
    title = "Partner error"


class PartnerUnavailable(PartnerError):
    """Timeout, refused connection, 5xx: the partner's outcome is unknown, never a failure."""

    status = 503
    default_code = "PARTNER_UNAVAILABLE"
    title = "Partner unavailable"


class PartnerProtocolError(PartnerError):
    """The partner answered something we cannot trust or parse (bad JSON, bad signature, missing field)."""

    default_code = "PARTNER_PROTOCOL_ERROR"
    title = "Partner answered outside the protocol"

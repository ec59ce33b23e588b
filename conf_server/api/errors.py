"""HTTP errors of the REST API and their CarrierX error bodies.

Source: CarrierX Conference API v1 (``seeds/004_…``), "HTTP Status Codes" and the sample
error bodies. Every error the API answers is an ``ApiError``; the app's exception handlers turn
it (and FastAPI's own validation and routing errors) into the spec's body::

    {"message": "no item error",
     "errors": [{"field": null, "message": "cannot find meeting room", "reference_sid": null}]}

except the malformed-JSON answer, which the spec wraps differently::

    {"body": {"message": "cannot parse json. Check json for validity", "errors": null},
     "status": 400}

::

    ApiError                    status + message + per-field errors
     ├── BadJsonError           400 the body is not JSON
     ├── BadQueryError          400 a malformed filter, order or field list
     ├── AuthenticationError    401 no or wrong credentials
     ├── PermissionDeniedError  403 the subscriber's role does not allow it
     ├── NotFoundApiError       404 no such object
     ├── ConflictApiError       409 a uniqueness rule (access code, login, number …)
     ├── UnsupportedMediaError  415 a body that is not application/json
     ├── ValidationApiError     422 a well-formed body the model refuses
     └── LiveUnavailableError   503 live control asked of an API without a running bridge
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

BAD_JSON_MESSAGE = "cannot parse json. Check json for validity"


@dataclass(frozen=True, slots=True)
class FieldError:
    """One entry of an error body's ``errors`` list."""

    field: str | None
    message: str

    def body(self) -> dict[str, Any]:
        return {"field": self.field, "message": self.message, "reference_sid": None}


class ApiError(Exception):
    """An HTTP error with a CarrierX body."""

    status = 500
    message = "internal server error"

    def __init__(self, *errors: FieldError) -> None:
        super().__init__("; ".join(e.message for e in errors) or self.message)
        self.errors = errors

    def body(self) -> dict[str, Any]:
        return {"message": self.message, "errors": [e.body() for e in self.errors]}


class BadJsonError(ApiError):
    status = 400
    message = BAD_JSON_MESSAGE

    def __init__(self) -> None:
        super().__init__()

    def body(self) -> dict[str, Any]:
        return {"body": {"message": self.message, "errors": None}, "status": self.status}


class BadQueryError(ApiError):
    status = 400
    message = "bad request"

    def __init__(self, parameter: str, reason: str) -> None:
        super().__init__(FieldError(parameter, reason))


class AuthenticationError(ApiError):
    status = 401
    message = "authentication required"

    def __init__(self) -> None:
        super().__init__(FieldError("cause", self.message))


class PermissionDeniedError(ApiError):
    status = 403
    message = "permission denied"

    def __init__(self) -> None:
        super().__init__(FieldError("cause", self.message))


class NotFoundApiError(ApiError):
    status = 404
    message = "no item error"

    def __init__(self, what: str) -> None:
        super().__init__(FieldError(None, f"cannot find {what}"))


class ConflictApiError(ApiError):
    status = 409
    message = "conflict"

    def __init__(self, reason: str, field: str | None = None) -> None:
        super().__init__(FieldError(field, reason))


class UnsupportedMediaError(ApiError):
    status = 415
    message = "unsupported media type"

    def __init__(self, expected: str = "application/json") -> None:
        super().__init__(FieldError("Content-Type", f"expected {expected}"))


class ValidationApiError(ApiError):
    status = 422
    message = "object validation error"

    def __init__(self, *errors: FieldError) -> None:
        super().__init__(*errors)

    @classmethod
    def one(cls, field: str | None, reason: str) -> ValidationApiError:
        return cls(FieldError(field, reason))


class LiveUnavailableError(ApiError):
    status = 503
    message = "live control unavailable"

    def __init__(self) -> None:
        super().__init__(FieldError("cause", "this server runs without live meetings"))

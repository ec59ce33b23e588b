"""The REST API (CarrierX Conference v1 resource model).

Public API: ``create_app(store, live, settings)`` → FastAPI app under ``/conference/v1``;
``start_api(app, host, port)`` → ``ApiHandle`` (``.port``, ``await .stop()``); ``ApiSettings``.
"""

from conf_server.api.app import BASE, ApiHandle, create_app, start_api
from conf_server.api.context import ApiSettings

__all__ = ["BASE", "ApiHandle", "ApiSettings", "create_app", "start_api"]

"""Persistence: SQLAlchemy 2 async; SQLite by default, PostgreSQL by URL.

Public API: ``Store`` (``store.py``), the records it takes and returns (``records.py``),
its exceptions (``errors.py``) and ``provision_file`` (``provision.py``).
"""

from conf_server.domain.attributes import Role
from conf_server.store.db import DEFAULT_URL
from conf_server.store.errors import (
    ConflictError,
    InvalidDataError,
    NotFoundError,
    ProvisionError,
    StoreError,
)
from conf_server.store.records import (
    CONF_CALL_FLOW_ID,
    CallFlowInfo,
    DidGroupInfo,
    DidGroupRef,
    DidGroupSpec,
    DidInfo,
    DidSpec,
    KeyInfo,
    KeySpec,
    Page,
    PinInfo,
    PinSpec,
    RoomInfo,
    RoomSpec,
    SubscriberInfo,
    SubscriberSpec,
)
from conf_server.store.store import Store

__all__ = [
    "CONF_CALL_FLOW_ID",
    "DEFAULT_URL",
    "CallFlowInfo",
    "ConflictError",
    "DidGroupInfo",
    "DidGroupRef",
    "DidGroupSpec",
    "DidInfo",
    "DidSpec",
    "InvalidDataError",
    "KeyInfo",
    "KeySpec",
    "NotFoundError",
    "Page",
    "PinInfo",
    "PinSpec",
    "ProvisionError",
    "Role",
    "RoomInfo",
    "RoomSpec",
    "Store",
    "StoreError",
    "SubscriberInfo",
    "SubscriberSpec",
]

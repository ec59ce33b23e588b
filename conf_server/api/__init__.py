"""The REST API (CarrierX Conference v1 resource model)."""

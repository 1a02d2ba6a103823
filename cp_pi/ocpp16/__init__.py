"""OCPP 1.6J over websockets: the session with the central system and the link that keeps it up."""

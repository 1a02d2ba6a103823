"""An embedded OCPP 1.6J central system for demos, the bench and the tests."""

"""The charge point application: connectors, transactions and OCPP configuration keys."""

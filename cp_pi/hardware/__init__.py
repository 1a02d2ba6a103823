"""gpiozero adapters for the connector hardware, and the rig that simulates it on mock pins."""

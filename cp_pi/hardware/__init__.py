"""gpiozero adapters for the connector hardware, and the bench rig that simulates it on mock pins."""

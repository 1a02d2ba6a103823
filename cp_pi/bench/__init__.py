"""The bench server: watch and drive a mock charge point over a websocket and a web page."""

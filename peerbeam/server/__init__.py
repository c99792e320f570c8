"""`peerbeam serve`: the app.py handlers, the web client and config.json in one process."""

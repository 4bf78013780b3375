"""The station's web pages: one router per domain, composed in ``app.py``."""

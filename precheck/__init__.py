"""The equipment pre-check (设备检查): each check proves one part of a test-room computer ready.

Between ``station`` and ``devices``: ``registry`` declares every check once (fixed id, title,
time limit, function), ``runner`` runs them under their limits, ``context`` is what they read,
``report`` is the result and its JSON, ``report_console`` and ``report_html`` render it.
"""

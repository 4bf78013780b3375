"""The small base every package may import: what differs between POSIX and Windows, file
durability and privacy, all-or-nothing writes, bilingual refusals.

It imports nothing of ours, so ``devices``, ``recorder``, ``pe_station``, ``uploader`` and
``station`` can all lean on it without an arrow pointing the wrong way.
"""

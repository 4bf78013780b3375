"""Songs shipped with the station: ``*.json`` metadata beside ``*.flac`` accompaniment.

A package (not a plain folder) so the wheel's package-data rules carry the files along.
"""

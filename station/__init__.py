"""qm-station: the shell that wires the singing test, the PE field test and the upload."""

__version__ = "0.1.0"

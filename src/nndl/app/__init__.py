"""The faces of nndl: the command line (and, later, the web page)."""

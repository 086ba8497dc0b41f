"""The rule engine: rule files, CEL conditions, templates, checks, ``evaluate``.

Pure: no I/O libraries (no SQLAlchemy, HTTP clients, Flask, RQ or Redis).
"""

"""Wire formats: the pydantic v2 models of every record streamproc reads or writes.

The JSON Schemas in `schemas/` are generated from these models (`make schemas`).
"""

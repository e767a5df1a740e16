"""The Cypher library's query files, shipped as package data (loaded by :mod:`graphrec.core.cypher`)."""

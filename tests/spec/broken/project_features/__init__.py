"""A custom feature module of the broken specs' project: a file inside it, so trusted."""

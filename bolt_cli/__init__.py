"""The `bolt` command: a thin shell over the library and the flows.

It lives outside ``bolt/`` because `run` and `stage` hand over to the Prefect flows, and
the library must never load Prefect. ``main`` is the console script's entry point.
"""

"""The service layer: what every entry point (CLI, REST, Python API, streams, jobs) calls.

Services take validated inputs and return domain objects; they know nothing of Typer or
FastAPI. Importing this package imports nothing else: each service is its own module.
"""

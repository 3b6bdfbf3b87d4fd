"""The REST server behind ``adcore serve`` (the optional ``server`` extra).

A thin FastAPI presentation layer over the same services the CLI uses (detect, fit,
the model store, explanations). Nothing here is imported by ``import adcore`` or by any
other command, so installing the extra costs the CLI nothing. Build an app with
:func:`adcore.server.app.create_app`; ``adcore serve`` runs it under uvicorn.
"""

"""The middleware: the REST API of docs/architecture.md as a FastAPI app.

Layers, outermost first: `app.py` assembles the app; `routers/` (one per resource) turn HTTP
into calls on `services/`, which hold every business and security rule and raise the domain
errors of `errors.py`; `records/` and `security/` are the storage and crypto building blocks.
Only `errors.py` knows how a domain error becomes an HTTP response.

Never imported by the WebUI process: it needs pydantic 2 and a current FastAPI.
"""

"""The embedded local stack: the middleware on SQLite, served by uvicorn on 127.0.0.1.

Lets anyone try the extension without an AWS account. Never imported by the WebUI process.
"""

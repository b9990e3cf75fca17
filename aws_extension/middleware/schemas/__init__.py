"""Request and response bodies of the REST API (pydantic 2), as documented in OpenAPI.

Requests forbid unknown fields, so a typo such as `pasword` is a 422 naming the field
rather than a silently ignored value.
"""

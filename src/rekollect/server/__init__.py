"""The HTTP front: an ASGI app that answers AWS JSON 1.1 requests on `POST /`."""

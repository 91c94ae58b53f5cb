"""The HTTP face of the service: server, app, middlewares, auth, the handlers and /api/v1."""

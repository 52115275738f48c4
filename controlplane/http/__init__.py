"""ccs-server's HTTPS port (``--http-listen``, default ``:7480``): trigger calls today, more later.

Why starlette and uvicorn: a maintained, typed ASGI toolkit and server, so request parsing,
HTTP/1.1 keep-alive and TLS are theirs, not hand-written; routes are plain starlette
``Route``/``Mount`` objects, so another feature (a web console) adds its own list of routes to
the same port (ccs-server builds one app from every feature's routes: ``Server._start_http`` and
:func:`controlplane.http.server.build_app`) without touching the triggers.
"""

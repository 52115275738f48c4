"""The web console: ccs-server's HTTPS port (``--http-listen``) serves it beside the trigger routes.

Why server-rendered pages (Jinja2) with htmx and its SSE extension, not a single-page app: the
pages are tables of what the API returns, and a few buttons. Rendering them on the server keeps
one language, one set of types (the protos) and no build step; htmx (the npm package
``htmx.org``, 50 kB, vendored under ``static/`` with its licence and served by ccs-server, so
nothing is fetched from a CDN at run time) swaps server-rendered fragments in place, and its SSE
extension re-fetches the visible fragment when the server says the cluster changed. No page
reloads, no client-side state to keep in step.

Why the console calls the gRPC API with the signed-in user's own token (the SDK's
``AsyncClient`` on one shared channel, over a Unix socket of its own on this server's gRPC
server: :mod:`.api` says why not the API port), instead of calling servicers or the store directly:
every page and action then passes through the very interceptors every ``ccs`` command passes
through - authentication, the access policy and its scope checks, the audit log, the request
limits - so the console cannot drift from the API's rules, and it holds no rule of its own. A
console page is exactly what the same token could read with the CLI; which controls a page
offers is the API's answer too (``WhoAmI``: the calls its policy admits from the token), so the
console holds no copy of the role rules either.

Modules: :mod:`.session` (the cookie and the CSRF token; pure), :mod:`.views` (protos to table
rows; pure), :mod:`.paging` (a page of a long list; pure), :mod:`.api` (the client and its
socket), :mod:`.live` (server-sent events over the Watch RPC), :mod:`.pages` and
:mod:`.actions` (the starlette routes), :mod:`.wiring` (put together).
"""

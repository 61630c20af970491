"""Podium's HTTP/1.1 machinery, with no knowledge of endpoints, tokens or replicas.

listener.py parses requests (httptools) and runs them; limits.py bounds what a client may cost
it; message.py holds the request/response shapes; framing.py decides a response's framing (one
place for content-length, chunked, close-delimited and `connection: close`); respond.py writes a
handler's responses on a connection; asgi_host.py serves a request to an ASGI app (the control
plane) on the same connection; asgi.py adapts the other way (an ASGI server in front of a
handler); server.py runs a listener until told to stop. The gateway (podium.gateway) builds on
this package; nothing here imports it.
"""

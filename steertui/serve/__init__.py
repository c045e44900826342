"""`steertui serve`: the engine behind an OpenAI-compatible HTTP API, steering per request.

`app.create_app(...)` is the ASGI app (starlette), `requests` reads and checks request bodies,
`steering` turns a request's steering into an engine plan, `errors` shapes errors the OpenAI
way. Decoding is `steertui.engine.batcher`'s continuous batching. Needs the `serve` extra.
"""

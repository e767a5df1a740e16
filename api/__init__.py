"""The GraphQL API: translates GraphQL to calls on the engine; nothing else lives here.

``api.app.create_app`` builds the ASGI app (``/graphql``, ``/healthz``, ``/readyz``, ``/metrics``,
``/widget/similar-items.js``, ``/demo``); ``api.schema`` composes the schema from ``api.types``,
``api.queries`` and ``api.mutations``; ``api.auth`` holds API keys and rate limits.
"""

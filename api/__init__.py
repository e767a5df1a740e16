"""The GraphQL API: translates GraphQL and HTTP into calls on the engine; nothing else lives here.

``api.app.create_app`` builds the ASGI app (``/graphql``, ``/healthz``, ``/readyz``, ``/metrics``,
``/widget/similar-items.js``, ``/demo``, the dashboard and GraphiQL pages from ``api.pages``);
``api.schema`` builds the schema (queries and mutations) over the types in ``api.types``;
``api.server`` is the bounded HTTP server, ``api.gate`` and ``api.cost`` what a request passes
before a resolver runs, ``api.auth`` the API keys.
"""

"""The GraphQL API: Strawberry on Starlette, served by uvicorn (``idgraph serve``).
The composition root is :func:`idgraph.api.app.create_app`."""

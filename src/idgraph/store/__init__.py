"""Storage: the port (:mod:`idgraph.store.port`) and its adapters."""

"""Calendar sources and draft stores, one module per provider (see :mod:`providers.registry`)."""

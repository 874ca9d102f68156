"""The pure core: request and result models, sweep planning, aggregation and CSV. No I/O here."""

"""OnStrategy core: model, rule engine, pipeline, jobs, store, CLI and app factory."""

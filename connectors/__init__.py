"""One module per CRM behind the small interface in :mod:`connectors.base`."""

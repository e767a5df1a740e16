"""The domain layer: settings, records, errors, stores and the recipes training and serving share."""

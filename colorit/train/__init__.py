"""Training side of ColorIt: corpus builder, data pipeline, networks, training loop and export."""

"""Tools the model may call: registry, permission policy and the built-ins."""

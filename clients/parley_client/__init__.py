"""parley_client: async client for parleyd and the `parley` CLI."""

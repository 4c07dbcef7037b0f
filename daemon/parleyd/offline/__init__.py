"""The built-in offline model and the loopback HTTP server it and the tests share."""

"""The local runtime: the cloud flow on one machine against an in-process moto server."""

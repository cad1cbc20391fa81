"""The Onetime Secret REST API v2 edge."""

"""The classic Onetime Secret API v1 edge: flat parameters, integer fields, every error a
404 with a `message`. The same use cases as v2 underneath."""

"""HTTP edges: parse a request, call core, shape the response."""

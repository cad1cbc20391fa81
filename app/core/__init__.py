"""The use cases, once: every edge (API v2, v1, pages) calls these and nothing below them."""

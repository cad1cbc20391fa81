"""A self-hosted one-time secret service speaking the Onetime Secret REST API."""

__version__ = "0.1.0"

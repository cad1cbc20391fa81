"""Load benchmark of the service against its peers and the hardware (issue 9): `make bench`."""

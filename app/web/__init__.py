"""The pages a person sees (create, reveal, receipt): another edge over the same core."""

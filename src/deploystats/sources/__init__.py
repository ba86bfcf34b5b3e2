"""Data sources: fetch records from GitHub, Prometheus and saved API dumps."""

"""Data stages: tables and splits (`prepare`), Great Expectations checks and drift (`validate`)."""

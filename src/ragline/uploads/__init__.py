"""Documents uploaded over the API: the stored files, their records, their index jobs."""

"""RQ job functions: the bridge between runs in the database and pipelines. No method logic here."""

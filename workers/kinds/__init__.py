"""One module per run kind: `prepare(run, store) -> workers.runner.PreparedJob`, what differs by kind."""

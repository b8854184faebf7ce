"""One module per method (augcon, aft, almost, evaluation), each with `handle(run, progress)`."""

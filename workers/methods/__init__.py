"""One module per method (spin, augcon, aft, almost, evaluation), each with `handle(run, progress)`."""

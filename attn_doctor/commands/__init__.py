"""One module per subcommand; each returns a result and lets the report render it."""

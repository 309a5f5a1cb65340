"""The service layer: the rules of jobs (creation, state, steps, results), shared by the
HTTP API, the workers and the CLI client. Backends (database, queue, storage) only
execute what this layer decides."""

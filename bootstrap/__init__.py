"""Bootstrap: the first program inside every sandbox (standard library only); it execs the server."""

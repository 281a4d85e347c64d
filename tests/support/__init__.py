"""Real parts for tests and benchmarks: a throwaway PostgreSQL cluster and a loopback sshd."""

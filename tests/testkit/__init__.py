"""Helpers only the tests use: tiny nets and weights, V1-format writers."""

"""Tools for labs, demos, tests and benchmarks: the demo registry and generated models.

`hubless.lab` sits above the services: it may start a testnet (`hubless.net.testnet`) and
drive whole clients, which no use case does.
"""

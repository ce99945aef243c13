"""Laptop tooling for fraudops: the `fraudops` CLI, the local stack, the demo, the AWS emulation, the
PaySim generator and importer, and the load generator. None of it ships in a Lambda image."""

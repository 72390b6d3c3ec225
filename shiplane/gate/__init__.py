"""The promotion gate's guard rails: protection pinned in the server's state (``pins``), the
guard that compares a sent config with it (``guard``), a person's factor (``approvers``,
``factors``, ``challenges``) and the record of what the gate decided (``events``)."""

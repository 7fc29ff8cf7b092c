"""A receivers package; its submodules are checked one by one."""

"""A fixture app whose receivers never connect: nothing imports its signals modules."""
